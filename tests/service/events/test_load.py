"""What keeps the window smooth and its memory flat while thousands of events a second
arrive: full garbage collections paced while a stream is open, and the strings every
event repeats kept once."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.service.events.test_event_stream import until
from twin_explorer.service.events.collector import NEVER, PacedCollector
from twin_explorer.service.events.record import (
    SHARED_MAX,
    from_event_data,
    shared,
    shared_count,
)


async def test_full_collections_run_at_their_pace_while_held_and_as_before_after():
    before = gc.get_threshold()
    full: list[int] = []

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(1)

    one, two = PacedCollector(every=0.05), PacedCollector(every=0.05)
    gc.callbacks.append(collected)
    try:
        one.hold()
        two.hold()  # two streams: the first to let go leaves the pace on
        assert gc.get_threshold() == (before[0], before[1], NEVER)
        assert gc.get_freeze_count() > 0  # what existed before is left out of them
        await until(lambda: len(full) >= 3, 10)
        await one.release()
        assert gc.get_threshold()[2] == NEVER
        await two.release()
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
        assert not one.held and not two.held
    finally:
        gc.callbacks.remove(collected)
        await one.release()
        await two.release()


@dataclass
class _Received:
    """What ``azure.eventhub.EventData`` offers ``from_event_data``: bytes keys and
    values, as the client hands them over (reference E.5)."""

    system_properties: dict[bytes, Any]
    properties: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b"{}"
    enqueued_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    sequence_number: int = 0


def _event(message_id: str) -> _Received:
    method = b'{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}'
    return _Received(
        {
            b"iothub-connection-device-id": b"sensor-1",
            b"iothub-connection-auth-method": method,
            b"iothub-message-source": b"Telemetry",
            b"message-id": message_id.encode(),
        },
        {b"unit": b"C"},
    )


def test_the_strings_every_event_repeats_are_kept_once():
    first, second = from_event_data(_event("m-1")), from_event_data(_event("m-2"))
    method = "iothub-connection-auth-method"
    assert first.system == {**second.system, "message-id": "m-1"}
    assert first.system[method] is second.system[method]
    assert first.device_id is second.device_id
    assert next(iter(first.properties)) is next(iter(second.properties))  # "unit"
    assert first.system["message-id"] == "m-1" and second.system["message-id"] == "m-2"


def test_the_table_of_kept_strings_stays_bounded():
    for number in range(SHARED_MAX * 2 + 5):
        shared(f"name-{number}")
    assert shared_count() <= SHARED_MAX
    counted = shared_count()
    long = "x" * 100_000
    assert shared(long) is long
    assert shared_count() == counted  # too long to be worth keeping
