"""The unmodified Node.js service SDK (``azure-iothub`` Registry) against an in-process hub:
listing devices, bulk create / update / delete, and device scopes.

The SDK only dials port 443, so it runs in a private network namespace whose port 443
leads to the hub (``tests/node/netns.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.hubfixtures import strip_port
from tests.node.harness import NodeService
from tests.node.netns import private_loopback_or_skip


@pytest_asyncio.fixture
async def registry(hub_server) -> AsyncIterator[NodeService]:
    network = private_loopback_or_skip()
    try:
        await network.forward_to("127.0.0.1", hub_server.rest_port)
        connection_string = strip_port(hub_server.service_connection_string(), hub_server.hostname)
        async with await NodeService.start(
            connection_string, hub_server.certificates.ca_cert, network
        ) as service:
            yield service
    finally:
        await network.close()


async def test_list_devices(registry: NodeService, hub_server) -> None:
    for device_id in ("b", "a", "c"):
        hub_server.core.put_device(device_id, {}, None)
    answer = await registry.registry("list")
    assert answer["event"] == "result", answer
    assert answer["status"] == 200
    assert [device["deviceId"] for device in answer["body"]] == ["a", "b", "c"]
