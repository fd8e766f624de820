"""The unmodified device SDK (aio) against an in-process hub, through its CONNECT proxy.

Service calls go through the unmodified service SDK in threads. Every wait is on an
event with a timeout; SDK handlers hop to the test loop through ``Inbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from azure.iot.device import Message, MethodResponse, ProxyOptions
from azure.iot.device.exceptions import CredentialError, NoConnectionError
from azure.iot.hub.models import CloudToDeviceMethod, Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from tests.gate import Gate
from tests.hubfixtures import RestClient, server_registry_manager
from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    TIMEOUT,
    Inbox,
    MqttHub,
    ensure_identity,
    mqtt_hub,
    sdk_client,
    set_handler,
    watch_log,
)
from twin_explorer.connection.sas import generate_key
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.proxy import ConnectProxy, hub_routes
from twin_explorer.localhub.runtime.tls import ensure_certificates, hub_tls_context
from twin_explorer.localhub.transports.mqtt.server import MqttServer

__all__ = ["mqtt_hub"]  # the fixture

DESIRED_FILTER = "$iothub/twin/PATCH/properties/desired/#"


def desired(values: dict[str, Any]) -> Twin:
    return Twin(properties=TwinProperties(desired=values))


# --- desired patches ----------------------------------------------------------------------


async def test_desired_patches_reach_two_modules_and_a_device_side_by_side(
    mqtt_hub: MqttHub,
) -> None:
    core = mqtt_hub.core
    strings = {
        "m1": ensure_identity(core, "dev", "m1"),
        "m2": ensure_identity(core, "dev", "m2"),
        "dev": ensure_identity(core, "dev"),
    }
    async with contextlib.AsyncExitStack() as stack:
        inboxes: dict[str, Inbox] = {}
        for name, connection_string in strings.items():
            client = await stack.enter_async_context(mqtt_hub.client(connection_string))
            await client.connect()
            inboxes[name] = Inbox()
            await set_handler(client, "on_twin_desired_properties_patch_received", inboxes[name])

        def patch(name: str, round_: int) -> None:
            manager = server_registry_manager(mqtt_hub.server)
            values = desired({"who": name, "round": round_})
            if name == "dev":
                manager.update_twin("dev", values, "*")
            else:
                manager.update_module_twin("dev", name, values, "*")

        # One patch each, all at once; each client gets its own, and only its own: the
        # second round's patch is the very next thing each one receives.
        for round_ in (1, 2):
            await asyncio.gather(*(asyncio.to_thread(patch, name, round_) for name in strings))
            for name, inbox in inboxes.items():
                assert await inbox.get() == {"who": name, "round": round_, "$version": 1 + round_}


# --- direct methods -----------------------------------------------------------------------


def invoke(hub: MqttHub, module_id: str, **fields: Any) -> Any:
    manager = server_registry_manager(hub.server)
    return manager.invoke_device_module_method("dev", module_id, CloudToDeviceMethod(**fields))


def answering(client: Any, status: int = 201):
    async def on_method(request: Any) -> None:
        payload = {"name": request.name, "payload": request.payload}
        await client.send_method_response(
            MethodResponse.create_from_method_request(request, status, payload)
        )

    return on_method


async def test_direct_method_round_trip(mqtt_hub: MqttHub) -> None:
    async with mqtt_hub.client(ensure_identity(mqtt_hub.core, "dev", "mod")) as module:
        await module.connect()
        await set_handler(module, "on_method_request_received", answering(module))
        result = await asyncio.to_thread(
            invoke,
            mqtt_hub,
            "mod",
            method_name="do it",
            payload={"a": [1, None]},
            response_timeout_in_seconds=10,
        )
    assert result.status == 201
    assert result.payload == {"name": "do it", "payload": {"a": [1, None]}}


async def test_direct_method_to_an_offline_module_is_404103(mqtt_hub: MqttHub) -> None:
    ensure_identity(mqtt_hub.core, "dev", "offline")
    with pytest.raises(HttpOperationError) as info:
        await asyncio.to_thread(invoke, mqtt_hub, "offline", method_name="m")
    assert info.value.response.status_code == 404
    assert "404103" in info.value.response.text


async def test_direct_method_nobody_answers_is_504101(mqtt_hub: MqttHub) -> None:
    async with mqtt_hub.client(ensure_identity(mqtt_hub.core, "dev", "mute")) as module:
        await module.connect()
        requests = Inbox()
        await set_handler(module, "on_method_request_received", requests)
        with pytest.raises(HttpOperationError) as info:
            # 5 s is the shortest timeout IoT Hub takes (B.7).
            await asyncio.to_thread(
                invoke, mqtt_hub, "mute", method_name="m", response_timeout_in_seconds=5
            )
        assert (await requests.get()).name == "m"
    assert info.value.response.status_code == 504
    assert "504101" in info.value.response.text


async def test_connect_timeout_waits_for_a_late_module(mqtt_hub: MqttHub) -> None:
    connection_string = ensure_identity(mqtt_hub.core, "dev", "late")
    with watch_log(*SERVER_LOGS) as log:
        call = asyncio.ensure_future(
            asyncio.to_thread(
                invoke,
                mqtt_hub,
                "late",
                method_name="hello",
                payload={"x": 1},
                connect_timeout_in_seconds=30,
                response_timeout_in_seconds=30,
            )
        )
        await log.wait_for_async("dev/late waits")
        assert not call.done()
        async with mqtt_hub.client(connection_string) as module:
            await module.connect()
            await set_handler(module, "on_method_request_received", answering(module, 200))
            result = await asyncio.wait_for(call, 30)
    assert (result.status, result.payload) == (200, {"name": "hello", "payload": {"x": 1}})


# --- reconnects ---------------------------------------------------------------------------


async def test_the_sdk_reconnects_and_its_session_keeps_delivering(mqtt_hub: MqttHub) -> None:
    core, mqtt = mqtt_hub.core, mqtt_hub.mqtt
    connection_string = ensure_identity(core, "dev", "mod")
    core.patch_twin("dev", "mod", {"properties": {"desired": {"a": 1}}}, None)
    with watch_log(*SERVER_LOGS) as log:
        async with mqtt_hub.client(connection_string) as module:
            await module.connect()
            patches = Inbox()
            await set_handler(module, "on_twin_desired_properties_patch_received", patches)
            assert (await module.get_twin())["desired"] == {"a": 1, "$version": 2}
            subscribes = len([m for m in log.messages if "dev/mod subscribed" in m])

            # Drop the connection and change desired in the same loop step: the live patch
            # cannot go out, so only the SDK's own GET after reconnecting can bring it.
            assert mqtt.disconnect("dev", "mod")
            core.patch_twin("dev", "mod", {"properties": {"desired": {"b": 2}}}, None)
            # The GET's answer becomes a patch with the whole desired document (A.8).
            assert await patches.get() == {"a": 1, "b": 2, "$version": 3}
            assert log.find("dev/mod connected", "session resumed")

            # No SUBSCRIBE since: the resumed session still delivers live patches.
            core.patch_twin("dev", "mod", {"properties": {"desired": {"c": 3}}}, None)
            assert await patches.get() == {"c": 3, "$version": 4}
            assert len([m for m in log.messages if "dev/mod subscribed" in m]) == subscribes
            assert DESIRED_FILTER in mqtt.sessions.get("dev/mod").subscriptions


@contextlib.asynccontextmanager
async def _gate_to_proxy(hub: MqttHub) -> AsyncIterator[tuple[Gate, ProxyOptions]]:
    """A Gate in front of the hub's proxy, and the SDK's proxy options to go through it."""
    gate = Gate(("127.0.0.1", hub.server.proxy_port))
    await gate.start()
    try:
        yield gate, ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=gate.port)
    finally:
        await gate.close()


def _bodies(hub: MqttHub) -> list[bytes]:
    return [m["body"] for m in hub.core.telemetry("dev", "mod")]


async def _send_through_a_cut(
    module: Any, gate: Gate, body: str, *, sdk_may_give_up: bool = False
) -> None:
    """Send ``body`` while the gate drops what it must (set by the caller), then cut the
    connection: the SDK reconnects and re-sends the message, with DUP, until acknowledged.
    ``sdk_may_give_up``: when the hub already took the message, the SDK may also report
    NoConnectionError instead (its re-send can race its reconnect); either way the hub
    must have it."""
    gate.dropped.clear()
    sending = asyncio.ensure_future(module.send_message(Message(body)))
    async with asyncio.timeout(TIMEOUT):
        await gate.dropped.wait()
    gate.drop_sent = gate.drop_replies = False
    gate.cut()
    async with asyncio.timeout(TIMEOUT):
        if sdk_may_give_up:
            with contextlib.suppress(NoConnectionError):
                await sending
        else:
            await sending


async def test_a_message_re_sent_on_a_packet_id_acked_before_is_kept(mqtt_hub: MqttHub) -> None:
    """A new SDK client (a restarted program) numbers packets from 1 again on its kept
    session. Its first message is lost in the network and re-sent with DUP after the
    reconnect, on packet id 1, which the hub acknowledged for the earlier client: it is
    a new message all the same (MQTT-4.3.2-5)."""
    connection_string = ensure_identity(mqtt_hub.core, "dev", "mod")
    with watch_log(*SERVER_LOGS) as log:
        async with _gate_to_proxy(mqtt_hub) as (gate, proxy):
            async with sdk_client(connection_string, mqtt_hub.ca_pem, proxy) as module:
                await module.connect()
                await module.send_message(Message("first program"))
            async with sdk_client(connection_string, mqtt_hub.ca_pem, proxy) as module:
                await module.connect()
                gate.drop_sent = True
                await _send_through_a_cut(module, gate, "second program")
                await module.send_message(Message("and on"))
        assert len([m for m in log.messages if "session resumed" in m]) == 2
    assert _bodies(mqtt_hub) == [b"first program", b"second program", b"and on"]


async def test_a_message_whose_puback_was_lost_is_kept(mqtt_hub: MqttHub) -> None:
    """The connection drops after the hub took a message and before its PUBACK reached the
    SDK, which sends it again after reconnecting: the hub has it at least once."""
    connection_string = ensure_identity(mqtt_hub.core, "dev", "mod")
    with watch_log(*SERVER_LOGS) as log:
        async with (
            _gate_to_proxy(mqtt_hub) as (gate, proxy),
            sdk_client(connection_string, mqtt_hub.ca_pem, proxy) as module,
        ):
            await module.connect()
            gate.drop_replies = True
            await _send_through_a_cut(module, gate, "its ack was lost", sdk_may_give_up=True)
            assert log.find("dev/mod connected", "session resumed")
            await module.send_message(Message("next"))
    bodies = _bodies(mqtt_hub)
    assert bodies[0] == b"its ack was lost" and bodies[-1] == b"next"
    assert set(bodies) == {b"its ack was lost", b"next"}


async def test_an_idle_sdk_client_stays_connected(mqtt_hub: MqttHub) -> None:
    """paho pings after ``keep_alive`` idle seconds and hangs up when no PINGRESP comes
    by the next check: a hub that does not answer drops every idle client each 2 x 60 s."""
    connection_string = ensure_identity(mqtt_hub.core, "dev", "mod")
    with watch_log(*SERVER_LOGS) as log:
        async with mqtt_hub.client(connection_string, keep_alive=1) as module:
            await module.connect()
            changes = Inbox()
            module.on_connection_state_change = lambda: changes(module.connected)
            await asyncio.sleep(3.5)  # the idleness under test: three keep-alive periods
            assert changes.empty() and module.connected
            assert mqtt_hub.mqtt.connected_clients() == ["dev/mod"]
    assert len([m for m in log.messages if "dev/mod connected" in m]) == 1


# --- authentication -----------------------------------------------------------------------


async def test_wrong_key_disabled_device_and_deleted_module_are_refused(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    good = ensure_identity(core, "dev", "mod")
    wrong = good.rsplit("SharedAccessKey=", 1)[0] + "SharedAccessKey=" + generate_key()
    async with mqtt_hub.client(wrong) as client:
        with pytest.raises(CredentialError):
            await client.connect()

    device = core.get_device("dev")
    core.put_device("dev", {**device, "status": "disabled"}, "*")
    async with mqtt_hub.client(good) as client:
        with pytest.raises(CredentialError):
            await client.connect()

    core.put_device("dev", {**device, "status": "enabled"}, "*")
    core.delete_module("dev", "mod", "*")
    async with mqtt_hub.client(good) as client:
        with pytest.raises(CredentialError):
            await client.connect()


async def test_a_deleted_module_is_dropped_and_its_reconnect_refused(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    async with mqtt_hub.client(ensure_identity(core, "dev", "mod")) as module:
        states = Inbox()
        await set_handler(module, "on_connection_state_change", lambda: states(module.connected))
        await module.connect()
        assert await states.get() is True
        core.delete_module("dev", "mod", "*")
        assert await states.get() is False
        with pytest.raises(CredentialError):
            # An explicit connect: an operation's implicit one may surface the refusal as
            # ConnectionFailedError instead, depending on SDK thread timing.
            await module.connect()
    assert "dev/mod" not in mqtt_hub.mqtt.sessions


@contextlib.asynccontextmanager
async def hub_ahead_of_time(data_dir: Path, seconds: float) -> AsyncIterator[tuple]:
    """A hub whose clock runs ``seconds`` ahead: the SDK's fresh tokens look expired."""
    certs = ensure_certificates(data_dir)
    core = HubCore.open(data_dir, clock=lambda: time.time_ns() + int(seconds * 1e9))
    mqtt = MqttServer(core, hub_tls_context(certs))
    proxy = None
    try:
        port = await mqtt.start("127.0.0.1", 0)
        proxy = ConnectProxy(hub_routes(["localhost"], ("127.0.0.1", port), ("127.0.0.1", 9)))
        proxy_port = await proxy.start("127.0.0.1", 0)
        yield core, certs.ca_cert.read_text(), ProxyOptions("HTTP", "127.0.0.1", proxy_port)
    finally:
        if proxy is not None:
            await proxy.close()
        await mqtt.close()
        core.close()


async def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    # The SDK will not even build a client from a token that already expired, so the hub's
    # clock runs past the default one-hour token lifetime instead.
    async with hub_ahead_of_time(tmp_path / "hub", 2 * 3600) as (core, ca_pem, proxy):
        connection_string = ensure_identity(core, "dev", "mod")
        async with sdk_client(connection_string, ca_pem, proxy) as client:
            with pytest.raises(CredentialError):
                await client.connect()


# --- telemetry ----------------------------------------------------------------------------


async def test_telemetry_is_counted(mqtt_hub: MqttHub) -> None:
    count = 20
    async with mqtt_hub.client(ensure_identity(mqtt_hub.core, "dev", "mod")) as module:
        await module.connect()
        for i in range(count):
            message = Message(json.dumps({"i": i}), message_id=f"id-{i}")
            message.custom_properties["n"] = str(i)
            await module.send_message(message)
        await module.send_message_to_output(Message("out"), "output 1")
    rest = RestClient(
        f"https://localhost:{mqtt_hub.server.rest_port}",
        mqtt_hub.server.service_connection_string(),
        mqtt_hub.server.certificates.ca_cert,
    )
    try:
        status, body = await rest.json("GET", "/_localhub/telemetry/dev/modules/mod")
    finally:
        await rest.close()
    assert status == 200
    assert body["count"] == count + 1
    assert mqtt_hub.core.telemetry_count("dev", "mod") == count + 1
    messages = mqtt_hub.core.telemetry("dev", "mod")
    assert messages[3]["properties"] == {"n": "3"}
    assert messages[3]["systemProperties"]["$.mid"] == "id-3"
    assert messages[-1]["systemProperties"]["$.on"] == "output 1"


async def test_c2d_reaches_the_device_sdk_and_completes_on_its_puback(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    connection_string = ensure_identity(core, "dev")
    core.send_c2d("dev", b"while away", {"k": "v"}, message_id="m1")  # queued: offline
    inbox = Inbox()
    with watch_log(*SERVER_LOGS) as log:
        async with mqtt_hub.client(connection_string) as device:
            await device.connect()
            await set_handler(device, "on_message_received", inbox)
            first = await inbox.get()
            core.send_c2d("dev", "grüße".encode(), {"a/b": "x=y&z", "$.ct": "text/plain"})
            second = await inbox.get()
            await log.wait_for_async("dev acknowledged", "/messages/devicebound/", count=2)
    assert (first.data, first.message_id, first.custom_properties) == (
        b"while away",
        "m1",
        {"k": "v"},
    )
    assert second.data.decode() == "grüße"
    assert second.custom_properties == {"a/b": "x=y&z"} and second.content_type == "text/plain"
    assert core.c2d.depth("dev") == 0  # both completed by the device's PUBACK
