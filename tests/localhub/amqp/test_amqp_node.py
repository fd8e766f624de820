"""The unmodified Node.js device SDK over AMQP (``azure-iot-device-amqp``'s ``Amqp``, the
Node module-twin tutorial's transport) against an in-process hub."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.localhub.amqp.support import SERVER_LOGS, amqp_hub, event_of, node_over_amqp
from tests.localhub.mqtt_support import watch_log
from twin_explorer.localhub.core.c2d import MAX_DELIVERY_COUNT
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.runtime.server import HubServer

__all__ = ["amqp_hub"]  # the fixture
TIMEOUT = 20.0


async def _until(condition, within: float = TIMEOUT) -> None:
    """Wait for a condition the hub's loop makes true (the test shares that loop)."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.01)  # polled: the core announces none of these


async def test_the_node_module_tutorial_flow_over_amqp(amqp_hub: HubServer) -> None:
    """open, getTwin, desired patch received, reported patch, method answered, telemetry
    and a module output sent: each seen by the hub as over MQTT."""
    core = amqp_hub.core
    with watch_log(*SERVER_LOGS) as log:
        async with await node_over_amqp(amqp_hub, "tut", "mod") as node:
            idle_since = core.get_module("tut", "mod")["lastActivityTime"]
            await node.call("open")
            assert core.presence.online() == ["tut/mod"]
            assert core.get_module("tut", "mod")["connectionState"] == "Connected"

            twin = await node.call("get_twin")
            assert "$version" in twin["desired"] and "$version" in twin["reported"]
            await log.wait_for_async("tut/mod subscribed to desired properties")
            patched = core.patch_twin("tut", "mod", {"properties": {"desired": {"fw": "2"}}}, None)
            version = patched["properties"]["desired"]["$version"]
            while (event := await event_of(node, "desired"))["patch"].get("$version") != version:
                pass
            assert event["patch"]["fw"] == "2"

            await node.call("report", patch={"fw": "2", "state": "ok"})
            reported = core.get_twin("tut", "mod")["properties"]["reported"]
            assert reported["state"] == "ok"

            await node.call("on_method", name="reboot", status=200, payload={"done": True})
            status, payload = await core.methods.invoke_method(
                "tut", "mod", "reboot", {"delay": 1}, response_timeout=10, connect_timeout=10
            )
            assert (status, payload) == (200, {"done": True})
            assert (await event_of(node, "method"))["payload"] == {"delay": 1}

            await node.call("send", body='{"temp":20}')
            await node.call("send_output", output="out1", body='{"temp":21}')
            sent = core.telemetry("tut", "mod")
            assert [m["body"] for m in sent] == [b'{"temp":20}', b'{"temp":21}']
            assert sent[1]["systemProperties"]["$.on"] == "out1"
            assert core.get_module("tut", "mod")["lastActivityTime"] > idle_since
            await node.call("close")
        await _until(lambda: core.presence.online() == [])
        assert core.get_module("tut", "mod")["connectionState"] == "Disconnected"


async def test_a_method_for_a_device_without_a_method_link_is_404_and_unanswered_504(
    amqp_hub: HubServer,
) -> None:
    methods = amqp_hub.core.methods
    async with await node_over_amqp(amqp_hub, "m404") as node:
        await node.call("open")
        with pytest.raises(HubError) as caught:  # no method links yet
            await methods.invoke_method("m404", None, "reboot", None, 5, connect_timeout=0)
        assert caught.value.status == 404
        # Method links attached, but no handler for "reboot": the call times out as over MQTT.
        await node.call("on_method", name="other", status=200, payload=None)
        with pytest.raises(HubError) as caught:
            await methods.invoke_method("m404", None, "reboot", None, 1, connect_timeout=10)
        assert caught.value.status == 504


async def test_c2d_to_a_node_amqp_device_completed_rejected_and_abandoned(
    amqp_hub: HubServer,
) -> None:
    core = amqp_hub.core
    async with await node_over_amqp(amqp_hub, "c2d") as node:
        await node.call("open")
        await node.call("on_c2d", settle="complete")
        core.send_c2d("c2d", b"one", {"k": "v"}, message_id="m1")
        event = await event_of(node, "c2d")
        assert (event["body"], event["messageId"], event["properties"]) == ("one", "m1", {"k": "v"})
        await _until(lambda: core.c2d.depth("c2d") == 0)
        assert not core.c2d.dead_letters

        await node.call("on_c2d", settle="reject")
        core.send_c2d("c2d", b"two", message_id="m2")
        assert (await event_of(node, "c2d"))["messageId"] == "m2"
        await _until(lambda: [m.message_id for m in core.c2d.dead_letters] == ["m2"])
        assert core.c2d.depth("c2d") == 0

        # Abandoned, it comes again, until IoT Hub's delivery count dead-letters it.
        await node.call("on_c2d", settle="abandon")
        core.send_c2d("c2d", b"three", message_id="m3")
        for _ in range(MAX_DELIVERY_COUNT):
            assert (await event_of(node, "c2d"))["messageId"] == "m3"
        await _until(lambda: [m.message_id for m in core.c2d.dead_letters] == ["m2", "m3"])
        assert core.c2d.depth("c2d") == 0
