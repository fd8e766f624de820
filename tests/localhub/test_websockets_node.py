"""The unmodified Node.js device SDK over WebSockets: ``MqttWs`` and ``AmqpWs``.

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
from tests.localhub.amqp.support import amqp_hub
from tests.localhub.mqtt_support import SERVER_LOGS, ensure_identity, watch_log
from tests.localhub.ws_support import until
from tests.node.harness import NodeDevice
from tests.node.netns import private_loopback_or_skip
from twin_explorer.localhub.runtime.server import HubServer

__all__ = ["amqp_hub"]  # the fixture: a hub with every listener on an OS-chosen port

DEVICE, MODULE = "nodews", "mod"
# The AMQP connections' log too (who connected, over what, subscribing to what).
LOGS = (*SERVER_LOGS, "twin_explorer.localhub.transports.amqp.connection")


@contextlib.asynccontextmanager
async def node_module_via_proxy(
    hub: HubServer, transport: str, module_id: str | None = MODULE
) -> AsyncIterator[NodeDevice]:
    """The tutorial's module (or its device) in a Node program using ``transport``
    through the hub's CONNECT proxy, which routes ``localhost:443`` to the REST port."""
    connection_string = ensure_identity(hub.core, DEVICE, module_id)
    node = await NodeDevice.start(
        connection_string,
        None,
        hub.certificates.ca_cert,
        transport=transport,
        ws_proxy_port=hub.proxy_port,
    )
    async with node:
        yield node


@contextlib.asynccontextmanager
async def node_module_on_443(hub: HubServer, transport: str) -> AsyncIterator[NodeDevice]:
    """The tutorial's module in a Node program using ``transport``, in a namespace whose
    ``localhost:443`` is the hub's REST port."""
    connection_string = ensure_identity(hub.core, DEVICE, MODULE)
    network = private_loopback_or_skip()
    try:
        await network.forward_to("127.0.0.1", hub.rest_port)
        node = await NodeDevice.start(
            connection_string,
            None,
            hub.certificates.ca_cert,
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
        assert event["event"] in ("desired", "method", "c2d"), event


async def tutorial_flow(hub: HubServer, node: NodeDevice, subscribed: Awaitable[object]) -> None:
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

    await node.call("on_method", name="reboot", status=200, payload={"ok": True})
    manager = server_registry_manager(hub)
    # The SDK attaches its method link (AMQP) after on_method answers: the call waits
    # for it as IoT Hub does, up to its connect timeout.
    method = CloudToDeviceMethod(
        method_name="reboot", payload={"in": 1}, connect_timeout_in_seconds=10
    )
    result = await asyncio.to_thread(manager.invoke_device_module_method, DEVICE, MODULE, method)
    assert (result.status, result.payload) == (200, {"ok": True})
    assert (await _next(node, "method"))["payload"] == {"in": 1}

    await node.call("send", body='{"t": 21}')
    assert [m["body"] for m in hub.core.telemetry(DEVICE, MODULE)] == [b'{"t": 21}']
    await node.call("close")


@pytest.mark.parametrize("reach", [node_module_via_proxy, node_module_on_443])
@pytest.mark.parametrize("transport", ["mqttws", "amqpws"])
async def test_node_module_tutorial_over_websockets(
    amqp_hub: HubServer, transport: str, reach
) -> None:
    hub = amqp_hub
    with watch_log(*LOGS) as log:
        async with reach(hub, transport) as node:
            # MQTT logs the SUBSCRIBE to the desired topic, AMQP the desired link's attach.
            subscribed = log.wait_for_async(f"{DEVICE}/{MODULE} subscribed to", "desired")
            await tutorial_flow(hub, node, subscribed)
        assert log.find(f"{DEVICE}/{MODULE} connected", "wss")


@pytest.mark.parametrize("transport", ["mqttws", "amqpws"])
async def test_c2d_to_a_node_device_over_websockets_is_completed(
    amqp_hub: HubServer, transport: str
) -> None:
    core = amqp_hub.core
    async with node_module_via_proxy(amqp_hub, transport, None) as node:
        await node.call("open")
        await node.call("on_c2d", settle="complete")
        core.send_c2d(DEVICE, b"hello", {"k": "v"}, message_id="m1")
        event = await _next(node, "c2d")
        assert (event["body"], event["messageId"], event["properties"]) == (
            "hello",
            "m1",
            {"k": "v"},
        )
        await until(lambda: core.c2d.depth(DEVICE) == 0, what="the message to be completed")
        assert not core.c2d.dead_letters
