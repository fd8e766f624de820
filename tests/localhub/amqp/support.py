"""Shared helpers for the AMQP transport tests; this module holds no tests itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.localhub.amqp.raw_client import RawClient
from tests.localhub.mqtt_support import ensure_identity
from tests.node.harness import NodeDevice
from twin_explorer.connection.sas import device_resource_uri, generate_device_token
from twin_explorer.connection.strings import parse
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.runtime.tls import client_context

SERVER_LOGS = (
    "twin_explorer.localhub.transports.amqp.connection",
    "twin_explorer.localhub.transports.amqp.server",
    "twin_explorer.localhub.core.presence",
)


@pytest_asyncio.fixture
async def amqp_hub(tmp_path: Path) -> AsyncIterator[HubServer]:
    async with HubServer(
        tmp_path / "hub", rest_port=0, mqtt_port=0, amqp_port=0, proxy_port=0
    ) as server:
        yield server


async def node_over_amqp(
    hub: HubServer, device_id: str, module_id: str | None = None
) -> NodeDevice:
    """A Node SDK client (``azure-iot-device-amqp``'s ``Amqp``) for the identity."""
    connection_string = ensure_identity(hub.core, device_id, module_id)
    assert hub.amqp_port is not None
    return await NodeDevice.start(
        connection_string, hub.amqp_port, hub.certificates.ca_cert, transport="amqp"
    )


def identity_token(hub: HubServer, device_id: str, module_id: str | None = None, **kw: Any) -> str:
    """A SAS token for the identity, signed with its primary key."""
    key = parse(ensure_identity(hub.core, device_id, module_id)).shared_access_key
    assert key is not None
    return generate_device_token(device_resource_uri("localhost", device_id, module_id), key, **kw)


async def raw_client(hub: HubServer, **kwargs: Any) -> RawClient:
    assert hub.amqp_port is not None
    return await RawClient.connect(hub.amqp_port, client_context(hub.certificates), **kwargs)


async def event_of(node: NodeDevice, kind: str) -> dict:
    """The Node client's next event of ``kind``, failing on a client error before it."""
    while True:
        event = await node.next_event()
        if event["event"] == kind:
            return event
        assert event["event"] != "client_error", event
