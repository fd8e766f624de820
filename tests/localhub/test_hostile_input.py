"""Hostile MQTT input against a real hub over TLS: refused at once, cheaply, in short log
lines, while every other client keeps being served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localhub.test_mqtt_server_support import (
    SERVER_LOGS,
    LogWatch,
    ThreadedHub,
    watch_log,
)
from twin_explorer.connection.redact import RedactingFilter
from twin_explorer.localhub.protocols.mqtt.packets import (
    Connack,
    Connect,
    Pingreq,
    Pingresp,
    Publish,
    Suback,
    Subscribe,
)

# Wall-clock bounds are loose (a loaded 2-core machine); before the fix these took 5 to
# 100 s, spent redacting log lines on the hub's loop.
STALL_BOUND = 2.0
LONGEST_LOG_LINE = 1000


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ThreadedHub]:
    threaded = ThreadedHub(tmp_path / "hub", sweep_interval=3600)
    yield threaded
    threaded.close()


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    """DEBUG logs of the MQTT side, through the redaction every real handler has (-v)."""
    with watch_log(*SERVER_LOGS) as watch:
        watch.addFilter(RedactingFilter())
        yield watch


def _longest_line(logs: LogWatch) -> int:
    return max(len(message) for message in logs.messages)


def test_a_huge_client_id_is_refused_at_once_and_stalls_no_one(
    hub: ThreadedHub, logs: LogWatch
) -> None:
    hub.identity("d1")
    with hub.raw() as bystander:
        assert bystander.connect("d1", hub.password("d1")).return_code == 0
        with hub.raw() as attacker:
            start = time.monotonic()
            attacker.send(Connect("x" * 60_000, False, 60, "h/x/?api-version=1", b"sig"))
            bystander.send(Pingreq())
            assert bystander.recv() == Pingresp()
            stalled = time.monotonic() - start
            connack = attacker.recv()
            assert connack == Connack(False, 2)  # identifier rejected: no SDK retry loop
            assert attacker.closed_by_hub()
    assert stalled < STALL_BOUND
    line = logs.wait_for("refused", "60000 characters")
    assert len(line) < LONGEST_LOG_LINE
    assert _longest_line(logs) < LONGEST_LOG_LINE


def test_a_client_id_of_a_module_at_the_longest_ids_is_still_heard(hub: ThreadedHub) -> None:
    device, module = "d" * 128, "m" * 128
    hub.identity(device, module)
    with hub.raw() as client:
        assert client.connect(f"{device}/{module}", hub.password(device, module)).return_code == 0


def test_a_publish_to_a_huge_unknown_topic_closes_only_that_client(
    hub: ThreadedHub, logs: LogWatch
) -> None:
    hub.identity("d1")
    hub.identity("d2")
    with hub.raw() as bystander, hub.raw() as attacker:
        assert bystander.connect("d2", hub.password("d2")).return_code == 0
        assert attacker.connect("d1", hub.password("d1")).return_code == 0
        start = time.monotonic()
        attacker.send(Publish("nowhere/" + "t" * 60_000, b"{}", 1, packet_id=1))
        bystander.send(Pingreq())
        assert bystander.recv() == Pingresp()
        stalled = time.monotonic() - start
        assert attacker.closed_by_hub()
    assert stalled < STALL_BOUND
    line = logs.wait_for("d1 disconnected", "unsupported topic")
    assert len(line) < LONGEST_LOG_LINE
    assert _longest_line(logs) < LONGEST_LOG_LINE


@pytest.mark.parametrize(
    ("client", "filters", "codes"),
    [
        (("d1", None), ["#", "$iothub/#", "devices/d2/messages/devicebound/#"], [0x80] * 3),
        (("d1", None), ["devices/+/#", "devices/d1/modules/m1/inputs/#"], [0x80] * 2),
        (("d1", "m1"), ["devices/d1/messages/devicebound/#", "+/+/+/+/+"], [0x80] * 2),
        (("d1", "m1"), ["devices/d1/modules/m2/inputs/#", "devices/d1/#"], [0x80] * 2),
        # Its own filters, as the Python, Node and C SDKs write them.
        (("d1", None), ["$iothub/twin/res/#", "devices/d1/messages/devicebound/#"], [1, 1]),
        (("d1", None), ["devices/+/messages/devicebound/#", "$iothub/methods/POST/#"], [1, 1]),
        (("d1", "m1"), ["$iothub/twin/PATCH/properties/desired/#"], [1]),
        (("d1", "m1"), ["devices/d1/modules/m1/inputs/#"], [1]),
    ],
)
def test_filters_outside_the_identity_get_suback_failure_and_the_rest_is_granted(
    hub: ThreadedHub, client: tuple[str, str | None], filters: list[str], codes: list[int]
) -> None:
    device_id, module_id = client
    hub.identity(device_id, module_id)
    hub.identity("d2")
    client_id = f"{device_id}/{module_id}" if module_id else device_id
    with hub.raw() as raw:
        assert raw.connect(client_id, hub.password(device_id, module_id)).return_code == 0
        raw.send(Subscribe(5, tuple((f, 1) for f in filters)))
        assert raw.recv() == Suback(5, tuple(codes))
        raw.send(Pingreq())  # still connected
        assert raw.recv() == Pingresp()
