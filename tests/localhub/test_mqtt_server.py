"""MqttServer over real TLS sockets with a raw MQTT client: the rules of checklist F."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    TIMEOUT,
    RawClient,
    ThreadedHub,
    watch_log,
)
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.protocols.mqtt.codec import encode
from twin_explorer.localhub.protocols.mqtt.packets import (
    Connack,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
)

DESIRED = "$iothub/twin/PATCH/properties/desired/#"
METHODS = "$iothub/methods/POST/#"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hub(tmp_path: Path, clock: FakeClock) -> Iterator[ThreadedHub]:
    # The periodic check is slowed down so only the test decides when timeouts are checked.
    threaded = ThreadedHub(tmp_path / "hub", clock=clock, sweep_interval=3600)
    yield threaded
    threaded.close()


def connected(hub: ThreadedHub, device_id: str, module_id: str | None = None, **kw) -> RawClient:
    hub.identity(device_id, module_id)
    client = hub.raw()
    client_id = f"{device_id}/{module_id}" if module_id else device_id
    assert client.connect(client_id, hub.password(device_id, module_id), **kw).return_code == 0
    return client


def publish(client: RawClient, topic: str, payload: bytes = b" ", packet_id: int = 1) -> None:
    client.send(Publish(topic, payload, 1, packet_id=packet_id))


def answer(client: RawClient) -> tuple[Publish, Any]:
    """The next PUBLISH (skipping PUBACKs) and its JSON body (None if empty)."""
    message = client.recv_publish()
    return message, json.loads(message.payload) if message.payload else None


def patch_desired(hub: ThreadedHub, device_id: str, module_id: str | None, desired: dict) -> Any:
    return hub.run(
        hub.server.core.patch_twin, device_id, module_id, {"properties": {"desired": desired}}, None
    )


# --- twin requests ------------------------------------------------------------------------


def test_twin_get_is_answered_without_a_subscription(hub: ThreadedHub) -> None:
    # The SDK's reconnect GET may come before it ever subscribes to twin/res (A.8).
    with connected(hub, "d1", "m1") as client:
        publish(client, "$iothub/twin/GET/?$rid=r-1", packet_id=7)
        message = client.recv()
        assert isinstance(message, Publish)
        assert message.topic == "$iothub/twin/res/200/?$rid=r-1"
        assert json.loads(message.payload) == {
            "desired": {"$version": 1},
            "reported": {"$version": 1},
        }
        # QoS 0 as on IoT Hub; the GET is acknowledged once answered.
        assert message.qos == 0
        assert client.recv() == Puback(7)


def test_reported_patch_answers_204_with_version_and_400_for_bad_bodies(hub: ThreadedHub) -> None:
    with connected(hub, "d1") as client:
        topic = "$iothub/twin/PATCH/properties/reported/?$rid={}"
        publish(client, topic.format("a"), b'{"temp": 21.5}', 1)
        message, body = answer(client)
        assert (message.topic, body) == ("$iothub/twin/res/204/?$rid=a&$version=2", None)

        publish(client, topic.format("b"), b'{"temp": ', 2)
        message, body = answer(client)
        assert message.topic == "$iothub/twin/res/400/?$rid=b"
        assert body["errorCode"] == 400004 and "JSON" in body["message"]

        publish(client, topic.format("c"), b"[1, 2]", 3)
        message, body = answer(client)
        assert message.topic == "$iothub/twin/res/400/?$rid=c"

        twin = hub.run(hub.server.core.device_twin, "d1", None)
        assert twin["reported"] == {"temp": 21.5, "$version": 2}


def test_a_re_sent_reported_patch_is_merged_once(hub: ThreadedHub) -> None:
    with connected(hub, "d1", "m1") as client:
        topic = "$iothub/twin/PATCH/properties/reported/?$rid=same"
        publish(client, topic, b'{"n": 1}', 1)
        first, _ = answer(client)
        publish(client, topic, b'{"n": 1}', 2)  # a fresh packet id: the session cannot tell
        second, _ = answer(client)
        assert first.topic == second.topic == "$iothub/twin/res/204/?$rid=same&$version=2"
        assert hub.run(hub.server.core.device_twin, "d1", "m1")["reported"]["$version"] == 2


def test_pubacks_keep_publish_order_and_telemetry_is_written_first(hub: ThreadedHub) -> None:
    # Telemetry is PUBACKed only once the event log has written it; the PUBACKs of the
    # requests after it wait behind it, in the order the PUBLISHes came (MQTT-4.6.0-2).
    packets = [
        Publish("devices/d1/messages/events/", b"t1", 1, packet_id=1),
        Publish("$iothub/twin/GET/?$rid=g", b" ", 1, packet_id=2),
        Publish("$iothub/twin/PATCH/properties/reported/?$rid=p", b"{}", 1, packet_id=3),
        Publish("devices/d1/messages/events/", b"t2", 1, packet_id=4),
    ]
    reader = hub.server.core.store.open_reader()  # sees committed rows only

    def written() -> int:
        query = "SELECT count(*) FROM events WHERE kind = 'telemetry' AND device_id = 'd1'"
        return reader.execute(query).fetchone()[0]

    try:
        with connected(hub, "d1") as client:
            client.send(b"".join(encode(packet) for packet in packets))  # one loop turn
            acks = []
            while len(acks) < 4:
                packet = client.recv()
                if isinstance(packet, Puback):
                    assert packet.packet_id != 1 or written() >= 1
                    acks.append(packet.packet_id)
            assert acks == [1, 2, 3, 4]
            assert written() == 2
    finally:
        reader.close()


def test_requests_re_sent_after_a_reconnect_are_answered_again(hub: ThreadedHub) -> None:
    """A twin answer can go down with its connection. paho then re-sends the request with
    DUP on the next one and the SDK waits for its answer forever (A.6, A.12). The hub cannot
    tell a copy from a new message by packet id: a reported patch is merged once by its
    $rid, and telemetry may come twice (QoS 1 duplicates, never drops)."""
    get = Publish("$iothub/twin/GET/?$rid=g", b" ", 1, packet_id=1)
    report = Publish("$iothub/twin/PATCH/properties/reported/?$rid=p", b'{"n": 1}', 1, packet_id=2)
    telemetry = Publish("devices/d1/modules/m1/messages/events/", b"t", 1, packet_id=3)
    with connected(hub, "d1", "m1") as first:
        for packet in (get, report, telemetry):
            first.send(packet)
        answered = [first.recv() for _ in range(5)]  # two answers, three PUBACKs
        assert {p.packet_id for p in answered if isinstance(p, Puback)} == {1, 2, 3}
    with hub.raw() as second:
        assert second.connect("d1/m1", hub.password("d1", "m1")).session_present
        for packet in (get, report, telemetry):
            second.send(dataclasses.replace(packet, dup=True))
        again = [second.recv() for _ in range(5)]
    assert [p.topic for p in again if isinstance(p, Publish)] == [
        "$iothub/twin/res/200/?$rid=g",
        "$iothub/twin/res/204/?$rid=p&$version=2",  # the first answer: merged once
    ]
    assert {p.packet_id for p in again if isinstance(p, Puback)} == {1, 2, 3}
    assert hub.run(hub.server.core.device_twin, "d1", "m1")["reported"]["$version"] == 2
    assert _telemetry_bodies(hub) == [b"t", b"t"]


def _one_of_each(hub: ThreadedHub, client: RawClient, round_: str, dup: bool) -> list[Any]:
    """Telemetry, a reported patch and a method response, on packet ids 1, 2 and 3; what
    the hub answered to each (the PUBACKs, the reported patch's answer, the method result)."""
    call = invoke(hub, "d1", "m1", f"m-{round_}", None, 10, 0)
    request = client.recv_publish()
    rid = request.topic.split("$rid=")[1]
    name = round_.encode()
    for packet_id, topic, payload in (
        (1, "devices/d1/modules/m1/messages/events/", name),
        (2, f"$iothub/twin/PATCH/properties/reported/?$rid={round_}", b'{"%s": 1}' % name),
        (3, f"$iothub/methods/res/200/?$rid={rid}", b'"%s"' % name),
    ):
        client.send(Publish(topic, payload, 1, dup=dup, packet_id=packet_id))
    answers = [client.recv() for _ in range(4)]  # three PUBACKs and the patch's answer
    return (
        [sorted(p.packet_id for p in answers if isinstance(p, Puback))]
        + [p.topic for p in answers if isinstance(p, Publish)]
        + [call.result(TIMEOUT)]
    )


@pytest.mark.parametrize("dup", [True, False], ids=["with DUP", "without DUP"])
def test_packet_ids_acknowledged_before_are_new_messages_after_a_reconnect(
    hub: ThreadedHub, dup: bool
) -> None:
    """paho numbers packets from 1 again on each connection of a kept session. An id whose
    PUBACK went out is free: a later PUBLISH with it is a new message whatever its DUP flag
    (MQTT-4.3.2-5). IoT Hub may duplicate a QoS 1 message, never drop one."""
    with connected(hub, "d1", "m1") as first:
        first.subscribe(1, METHODS)
        assert _one_of_each(hub, first, "a", False) == [
            [1, 2, 3],
            "$iothub/twin/res/204/?$rid=a&$version=2",
            (200, "a"),
        ]
    with hub.raw() as second:
        assert second.connect("d1/m1", hub.password("d1", "m1")).session_present
        assert _one_of_each(hub, second, "b", dup) == [
            [1, 2, 3],
            "$iothub/twin/res/204/?$rid=b&$version=3",
            (200, "b"),
        ]
    assert _telemetry_bodies(hub) == [b"a", b"b"]
    reported = hub.run(hub.server.core.device_twin, "d1", "m1")["reported"]
    assert reported == {"a": 1, "b": 1, "$version": 3}


def test_a_message_whose_puback_was_lost_is_recorded_at_least_once(hub: ThreadedHub) -> None:
    """The connection drops after the hub took a message and before its PUBACK arrived:
    the client re-sends it with DUP on its next connection, and the hub has it."""
    telemetry = Publish("devices/d1/modules/m1/messages/events/", b"t", 1, packet_id=1)
    with connected(hub, "d1", "m1") as first:
        first.send(telemetry)
    with hub.raw() as second:  # the first connection's PUBACK was never read
        assert second.connect("d1/m1", hub.password("d1", "m1")).session_present
        second.send(dataclasses.replace(telemetry, dup=True))
        assert second.recv() == Puback(1)
    assert _telemetry_bodies(hub)[:1] == [b"t"]


def _telemetry_bodies(hub: ThreadedHub) -> list[bytes]:
    return [message["body"] for message in hub.run(hub.server.core.telemetry, "d1", "m1")]


# --- connections and sessions -------------------------------------------------------------


def test_a_new_connect_for_an_identity_closes_the_older_connection(hub: ThreadedHub) -> None:
    with (
        watch_log(*SERVER_LOGS) as log,
        connected(hub, "d1", "m1") as first,
        connected(hub, "d1", "m1") as second,
    ):
        assert first.closed_by_hub()
        log.wait_for("d1/m1 connected again", "knock each other off")
        publish(second, "$iothub/twin/GET/?$rid=x")
        assert answer(second)[0].topic == "$iothub/twin/res/200/?$rid=x"
        assert hub.mqtt.connected_clients() == ["d1/m1"]


def test_re_subscribing_on_a_resumed_session_keeps_desired_patches_coming(
    hub: ThreadedHub,
) -> None:
    """The Node.js SDK subscribes again on every connection of its kept session."""
    hub.identity("d1")
    for round_ in range(3):
        with hub.raw() as client:
            assert client.connect("d1", hub.password("d1")).session_present == (round_ > 0)
            client.subscribe(1, "$iothub/twin/res/#", DESIRED)
            patch_desired(hub, "d1", None, {"round": round_})
            assert answer(client)[1] == {"round": round_, "$version": round_ + 2}
    assert hub.mqtt.sessions.get("d1").subscriptions == {"$iothub/twin/res/#": 1, DESIRED: 1}


def test_clean_session_0_keeps_subscriptions_and_clean_session_1_drops_them(
    hub: ThreadedHub,
) -> None:
    with connected(hub, "d1", "m1") as client:
        client.subscribe(1, DESIRED)
    with hub.raw() as client:
        connack = client.connect("d1/m1", hub.password("d1", "m1"))
        assert connack == Connack(True, 0)
        patch_desired(hub, "d1", "m1", {"x": 1})
        message, body = answer(client)
        assert message.topic == "$iothub/twin/PATCH/properties/desired/?$version=2"
        assert body == {"x": 1, "$version": 2}
    with hub.raw() as client:
        assert client.connect("d1/m1", hub.password("d1", "m1"), clean_session=True) == Connack(
            False, 0
        )
        patch_desired(hub, "d1", "m1", {"x": 2})
        # Anything published to this connection comes in order: the GET answer is first,
        # so no patch was sent.
        publish(client, "$iothub/twin/GET/?$rid=after")
        assert answer(client)[0].topic == "$iothub/twin/res/200/?$rid=after"


def test_desired_patches_reach_only_that_identity(hub: ThreadedHub) -> None:
    with connected(hub, "d1", "m1") as m1, connected(hub, "d1", "m2") as m2:
        m1.subscribe(1, DESIRED)
        m2.subscribe(1, DESIRED)
        patch_desired(hub, "d1", "m2", {"for": "m2"})
        patch_desired(hub, "d1", "m1", {"for": "m1"})
        assert answer(m1)[1] == {"for": "m1", "$version": 2}
        assert answer(m2)[1] == {"for": "m2", "$version": 2}


def test_pingreq_is_answered_at_once(hub: ThreadedHub) -> None:
    # A PINGREQ makes no event; its answer must not wait for one. paho hangs up when the
    # PINGRESP does not come within its keep-alive.
    with connected(hub, "d1", "m1", keepalive=1) as client:
        client.send(Pingreq())
        assert client.recv() == Pingresp()
        client.send(Pingreq())
        assert client.recv() == Pingresp()


def test_silent_clients_are_dropped_after_one_and_a_half_keep_alives(
    hub: ThreadedHub, clock: FakeClock
) -> None:
    with watch_log(*SERVER_LOGS) as log, connected(hub, "d1", keepalive=2) as client:
        clock.now += 3.0  # exactly 1.5 x 2 s: still allowed
        assert hub.run(hub.mqtt.check_timeouts) == 0
        clock.now += 0.1
        assert hub.run(hub.mqtt.check_timeouts) == 1
        assert client.closed_by_hub()
        log.wait_for("d1 disconnected", "silent")
        assert hub.run(hub.server.core.get_device, "d1")["connectionState"] == "Disconnected"


def test_bad_credentials_get_connack_5_and_a_closed_socket(hub: ThreadedHub) -> None:
    hub.identity("d1")
    with hub.raw() as client:
        assert client.connect("d1", b"SharedAccessSignature sr=x&sig=y&se=1") == Connack(False, 5)
        assert client.closed_by_hub()
    with hub.raw() as client:  # an unknown identity, no password at all
        assert client.connect("nobody", None) == Connack(False, 5)


def test_disabling_a_device_drops_its_connections_and_refuses_it(hub: ThreadedHub) -> None:
    with connected(hub, "d1", "m1") as module:
        device = hub.run(hub.server.core.get_device, "d1")
        hub.run(hub.server.core.put_device, "d1", {**device, "status": "disabled"}, "*")
        assert module.closed_by_hub()
    with hub.raw() as client:
        assert client.connect("d1/m1", hub.password("d1", "m1")).return_code == 5


@pytest.mark.parametrize(
    "topic",
    [
        "devices/other/messages/events/",  # telemetry as someone else
        "devices/d1/modules/m1/messages/devicebound/",  # not a device-to-hub topic
        "$iothub/twin/GET/no-rid",
    ],
)
def test_publishing_where_iot_hub_does_not_listen_closes_the_connection(
    hub: ThreadedHub, topic: str
) -> None:
    with connected(hub, "d1", "m1") as client:
        publish(client, topic, b"{}")
        assert client.closed_by_hub()
    assert hub.mqtt.connected_clients() == []


def test_telemetry_is_recorded_and_acknowledged(hub: ThreadedHub) -> None:
    with connected(hub, "d1", "m1") as client:
        publish(client, "devices/d1/modules/m1/messages/events/%24.ct=application%2Fjson&k=v")
        publish(client, "devices/d1/modules/m1/messages/events/%24.on=out1", b"x", 2)
        assert client.recv() == Puback(1)
        assert client.recv() == Puback(2)
    messages = hub.run(hub.server.core.telemetry, "d1", "m1")
    assert [m["properties"] for m in messages] == [{"k": "v"}, {}]
    assert messages[0]["systemProperties"] == {"$.ct": "application/json"}
    assert messages[1]["systemProperties"] == {"$.on": "out1"}


def test_a_client_that_does_not_read_is_dropped_not_buffered(tmp_path: Path) -> None:
    hub = ThreadedHub(tmp_path / "hub", max_outbound=64 * 1024)
    try:
        hub.identity("d1")
        with watch_log(*SERVER_LOGS) as log, hub.raw(rcvbuf=4096) as client:
            assert client.connect("d1", hub.password("d1")).return_code == 0
            client.subscribe(1, DESIRED)
            big = {f"k{i}": "v" * 3500 for i in range(8)}  # ~28 KB per notification
            # The kernel buffers some megabytes first; then the hub's own bound must hit.
            for round_ in range(2000):
                patch_desired(hub, "d1", None, {**big, "round": round_})
                if log.find("reads too slowly"):
                    break
            assert log.find("d1", "reads too slowly")
            assert hub.mqtt.connected_clients() == []
    finally:
        hub.close()


# --- direct methods -----------------------------------------------------------------------


def invoke(hub: ThreadedHub, *args: Any) -> Future:
    return asyncio.run_coroutine_threadsafe(hub.server.core.methods.invoke_method(*args), hub.loop)


def test_method_round_trip(hub: ThreadedHub) -> None:
    with connected(hub, "d1", "m1") as client:
        client.subscribe(1, METHODS)
        call = invoke(hub, "d1", "m1", "my method", {"p": 1}, 10, 0)
        request = client.recv_publish()
        assert request.qos == 0
        assert request.topic.startswith("$iothub/methods/POST/my%20method/?$rid=")
        assert json.loads(request.payload) == {"p": 1}
        rid = request.topic.split("$rid=")[1]
        publish(client, f"$iothub/methods/res/201/?$rid={rid}", b'{"r": [1]}')
        assert call.result(TIMEOUT) == (201, {"r": [1]})

        call = invoke(hub, "d1", "m1", "ping", None, 10, 0)
        request = client.recv_publish()
        assert request.payload == b"null"  # the SDK reads it as None (A.9)
        rid = request.topic.split("$rid=")[1]
        publish(client, f"$iothub/methods/res/200/?$rid={rid}", b"null", 2)
        assert call.result(TIMEOUT) == (200, None)


def test_method_errors(hub: ThreadedHub) -> None:
    with connected(hub, "d1", "m1") as client:
        # Connected but not subscribed: not online (404103), at once.
        with pytest.raises(HubError) as error:
            invoke(hub, "d1", "m1", "m", None, 10, 0).result(TIMEOUT)
        assert error.value.numeric == 404103
        client.subscribe(1, METHODS)
        with pytest.raises(HubError) as error:
            invoke(hub, "d1", "m1", "m", None, 0.05, 0).result(TIMEOUT)
        assert error.value.numeric == 504101

        call = invoke(hub, "d1", "m1", "m", None, 10, 0)
        request = client.recv_publish()  # the timed-out request
        request = client.recv_publish()
        rid = request.topic.split("$rid=")[1]
        publish(client, f"$iothub/methods/res/200/?$rid={rid}", b'"' + b"x" * 140_000 + b'"')
        with pytest.raises(HubError) as error:
            call.result(TIMEOUT)
        assert error.value.status == 400
        with pytest.raises(HubError):  # a request over 128 KB never leaves
            invoke(hub, "d1", "m1", "m", "x" * 140_000, 10, 0).result(TIMEOUT)


def test_close_fails_pending_calls_and_ends_every_connection(tmp_path: Path) -> None:
    hub = ThreadedHub(tmp_path / "hub")
    try:
        with connected(hub, "d1") as client:
            client.subscribe(1, METHODS)
            call = invoke(hub, "d1", None, "slow", None, 60, 0)
            client.recv_publish()
            hub.wait(hub.mqtt.close())
            with pytest.raises(HubError) as error:
                call.result(TIMEOUT)
            assert error.value.status == 503
            assert client.closed_by_hub()
            assert hub.mqtt.connection_count == 0
            assert hub.server.core.methods.pending_count == 0
    finally:
        hub.close()


def test_subscriptions_survive_a_hub_restart(tmp_path: Path) -> None:
    # The SDK never subscribes again after reconnecting (A.5), not even to a new process.
    first = ThreadedHub(tmp_path / "hub")
    try:
        with connected(first, "d1", "m1") as client:
            client.subscribe(1, DESIRED)
            client.subscribe(2, METHODS)
        with connected(first, "d1", "m2", clean_session=True) as client:
            client.subscribe(1, DESIRED)  # a clean session is not kept
    finally:
        first.close()
    second = ThreadedHub(tmp_path / "hub")
    try:
        assert second.mqtt.sessions.get("d1/m2") is None
        with second.raw() as client:
            assert client.connect("d1/m1", second.password("d1", "m1")) == Connack(True, 0)
            patch_desired(second, "d1", "m1", {"after": "restart"})
            assert answer(client)[1] == {"after": "restart", "$version": 2}
    finally:
        second.close()
