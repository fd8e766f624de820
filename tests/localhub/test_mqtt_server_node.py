"""The unmodified Node.js device SDK (MQTT transport) against an in-process hub.

Unlike the Python SDK, the Node SDK subscribes again on every connection, also when the
hub kept its session (it always connects with clean session 0). The SDK says nothing when
its desired-patch subscription is in place, so the tests wait for the hub's log of it.
"""

from __future__ import annotations

from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    LogWatch,
    MqttHub,
    ensure_identity,
    mqtt_hub,
    watch_log,
)
from tests.node.harness import NodeDevice

__all__ = ["mqtt_hub"]  # the fixture

DESIRED_FILTER = "$iothub/twin/PATCH/properties/desired/#"


def _patch_desired(hub: MqttHub, device_id: str, module_id: str | None, values: dict) -> int:
    twin = hub.core.patch_twin(device_id, module_id, {"properties": {"desired": values}}, None)
    return twin["properties"]["desired"]["$version"]


async def _node_device(hub: MqttHub, device_id: str, module_id: str | None = None) -> NodeDevice:
    connection_string = ensure_identity(hub.core, device_id, module_id)
    mqtt_port = hub.server.mqtt_port
    assert mqtt_port is not None
    return await NodeDevice.start(connection_string, mqtt_port, hub.server.certificates.ca_cert)


async def _get_twin_and_listen(node: NodeDevice, log: LogWatch, client_id: str, nth: int) -> dict:
    """get_twin (which adds a desired listener), then wait for the ``nth`` desired SUBSCRIBE."""
    twin = await node.call("get_twin")
    await log.wait_for_async(f"{client_id} subscribed to", DESIRED_FILTER, count=nth)
    return twin


async def _next_desired(node: NodeDevice, version: int) -> dict:
    """The desired patch of ``version``; the SDK first replays what get_twin brought."""
    while True:
        event = await node.next_event()
        assert event["event"] == "desired", event
        if event["patch"].get("$version") == version:
            return event["patch"]


async def test_desired_patches_reach_every_connection_of_a_node_device(mqtt_hub: MqttHub) -> None:
    """connect, get twin, receive a desired patch, disconnect; three times over, each
    connection resuming the session (a new SDK client each time, as a restarted program)."""
    with watch_log(*SERVER_LOGS) as log:
        async with await _node_device(mqtt_hub, "nodedev") as node:
            for round_ in range(3):
                if round_:
                    await node.call("new_client")
                await node.call("open")
                twin = await _get_twin_and_listen(node, log, "nodedev", round_ + 1)
                assert twin["desired"].get("round") == (round_ - 1 if round_ else None)
                version = _patch_desired(mqtt_hub, "nodedev", None, {"round": round_})
                assert (await _next_desired(node, version))["round"] == round_
                await node.call("close")
    assert log.find("nodedev connected", "session resumed")


async def test_a_node_client_closed_and_opened_again_gets_desired_patches(
    mqtt_hub: MqttHub,
) -> None:
    """One SDK client (a module's), closed and opened again: it does not subscribe again
    and relies on the kept session, which still delivers once its twin GET is answered."""
    with watch_log(*SERVER_LOGS) as log:
        async with await _node_device(mqtt_hub, "nodedev", "mod") as node:
            for round_ in range(2):
                await node.call("open")
                if round_ == 0:
                    await _get_twin_and_listen(node, log, "nodedev/mod", 1)
                else:
                    await node.call("get_twin")
                version = _patch_desired(mqtt_hub, "nodedev", "mod", {"round": round_})
                assert (await _next_desired(node, version))["round"] == round_
                await node.call("close")
        assert log.find("nodedev/mod connected", "session resumed")


async def test_a_node_client_reconnecting_by_itself_gets_desired_patches(
    mqtt_hub: MqttHub,
) -> None:
    """The connection drops; the SDK reconnects on its own and relies on the kept session."""
    with watch_log(*SERVER_LOGS) as log:
        async with await _node_device(mqtt_hub, "nodedev") as node:
            await node.call("open")
            await _get_twin_and_listen(node, log, "nodedev", 1)
            version = _patch_desired(mqtt_hub, "nodedev", None, {"round": 0})
            assert (await _next_desired(node, version))["round"] == 0
            assert mqtt_hub.mqtt.disconnect("nodedev")
            await log.wait_for_async("nodedev connected", "session resumed")
            version = _patch_desired(mqtt_hub, "nodedev", None, {"round": 1})
            assert (await _next_desired(node, version))["round"] == 1


async def test_a_node_program_killed_and_started_again_gets_desired_patches(
    mqtt_hub: MqttHub,
) -> None:
    """The first program dies without a DISCONNECT; the next one, for the same device,
    resumes the session, subscribes again and still gets every desired patch."""
    with watch_log(*SERVER_LOGS) as log:
        first = await _node_device(mqtt_hub, "nodedev")
        await first.call("open")
        await _get_twin_and_listen(first, log, "nodedev", 1)
        version = _patch_desired(mqtt_hub, "nodedev", None, {"round": 0})
        assert (await _next_desired(first, version))["round"] == 0
        await first.kill()
        async with await _node_device(mqtt_hub, "nodedev") as second:
            await second.call("open")
            twin = await _get_twin_and_listen(second, log, "nodedev", 2)
            assert twin["desired"]["round"] == 0
            for round_ in (1, 2):
                version = _patch_desired(mqtt_hub, "nodedev", None, {"round": round_})
                assert (await _next_desired(second, version))["round"] == round_
        assert log.find("nodedev connected", "session resumed")
