"""The unmodified Node.js device SDK over WebSockets: ``MqttWs`` (and ``AmqpWs``).

Both dial ``wss://<HostName>:443/$iothub/websocket`` and take no port for it. They reach
the hub's REST port, where the WebSocket endpoint serves them, either through the hub's
HTTP CONNECT proxy (the SDK's documented ``webSocketAgent`` option with
https-proxy-agent), or from a private network namespace whose port 443 leads there
(``tests/node/netns.py``), as a program unaware of any proxy would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import pytest
from azure.iot.hub.models import CloudToDeviceMethod

from tests.hubfixtures import server_registry_manager
from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    MqttHub,
    ensure_identity,
    mqtt_hub,
    watch_log,
)
from tests.node.harness import NodeDevice
from tests.node.netns import private_loopback_or_skip

__all__ = ["mqtt_hub"]  # the fixture

DEVICE, MODULE = "nodews", "mod"
DESIRED_FILTER = "$iothub/twin/PATCH/properties/desired/#"


@contextlib.asynccontextmanager
async def node_module_via_proxy(hub: MqttHub, transport: str) -> AsyncIterator[NodeDevice]:
    """The tutorial's module in a Node program using ``transport`` through the hub's
    CONNECT proxy, which routes ``localhost:443`` to the REST port."""
    connection_string = ensure_identity(hub.core, DEVICE, MODULE)
    node = await NodeDevice.start(
        connection_string,
        None,
        hub.server.certificates.ca_cert,
        transport=transport,
        ws_proxy_port=hub.server.proxy_port,
    )
    async with node:
        yield node


@contextlib.asynccontextmanager
async def node_module_on_443(hub: MqttHub, transport: str) -> AsyncIterator[NodeDevice]:
    """The tutorial's module in a Node program using ``transport``, in a namespace whose
    ``localhost:443`` is the hub's REST port."""
    connection_string = ensure_identity(hub.core, DEVICE, MODULE)
    network = private_loopback_or_skip()
    try:
        await network.forward_to("127.0.0.1", hub.server.rest_port)
        node = await NodeDevice.start(
            connection_string,
            None,
            hub.server.certificates.ca_cert,
            transport=transport,
            network=network,
        )
        async with node:
            yield node
    finally:
        await network.close()


async def _next(node: NodeDevice, kind: str, check=lambda event: True) -> dict:
    """The next unsolicited event of ``kind`` that passes ``check`` (the SDK first replays
    the desired properties get_twin brought)."""
    while True:
        event = await node.next_event()
        if event["event"] == kind and check(event):
            return event
        assert event["event"] in ("desired", "method"), event


async def tutorial_flow(hub: MqttHub, node: NodeDevice, subscribed: Awaitable[object]) -> None:
    """open, getTwin, desired patch received, reported patch, method answered, telemetry.
    ``subscribed``: done once the SDK's desired-patch subscription is in place (the SDK
    says nothing when it is)."""
    await node.call("open")
    twin = await node.call("get_twin")
    assert twin["desired"]["$version"] == 1
    await subscribed

    patched = hub.core.patch_twin(
        DEVICE, MODULE, {"properties": {"desired": {"telemetryInterval": 5}}}, None
    )
    version = patched["properties"]["desired"]["$version"]
    event = await _next(node, "desired", lambda e: e["patch"].get("$version") == version)
    assert event["patch"]["telemetryInterval"] == 5

    await node.call("report", patch={"telemetryInterval": 5})
    assert hub.core.get_twin(DEVICE, MODULE)["properties"]["reported"]["telemetryInterval"] == 5

    await node.call("answer_method", name="reboot", status=200, payload={"ok": True})
    manager = server_registry_manager(hub.server)
    method = CloudToDeviceMethod(method_name="reboot", payload={"in": 1})
    result = await asyncio.to_thread(manager.invoke_device_module_method, DEVICE, MODULE, method)
    assert (result.status, result.payload) == (200, {"ok": True})
    assert (await _next(node, "method"))["payload"] == {"in": 1}

    await node.call("send", body='{"t": 21}')
    assert [m["body"] for m in hub.core.telemetry(DEVICE, MODULE)] == [b'{"t": 21}']
    await node.call("close")


@pytest.mark.parametrize("reach", [node_module_via_proxy, node_module_on_443])
async def test_node_module_tutorial_over_mqtt_ws(mqtt_hub: MqttHub, reach) -> None:
    with watch_log(*SERVER_LOGS) as log:
        async with reach(mqtt_hub, "MqttWs") as node:
            subscribed = log.wait_for_async(f"{DEVICE}/{MODULE} subscribed to", DESIRED_FILTER)
            await tutorial_flow(mqtt_hub, node, subscribed)
        assert log.find(f"{DEVICE}/{MODULE} connected", "over wss")
