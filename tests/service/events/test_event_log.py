"""The Events view's Qt-free state: decoding, filters, the bounded log and pause."""

from __future__ import annotations

from datetime import UTC, datetime

from twin_explorer.service.events.filter import EventFilter
from twin_explorer.service.events.log import EventLog
from twin_explorer.service.events.record import Encoding, EventRecord, Source, decode


def record(device: str = "d", module: str | None = None, body: bytes = b"{}", **kw) -> EventRecord:
    return EventRecord(datetime.now(UTC), kw.pop("source", Source.TELEMETRY), device, module, body)


def test_bodies_decode_as_json_text_or_hex():
    assert decode(b'{"a": [1, 2]}') == (Encoding.JSON, '{\n  "a": [\n    1,\n    2\n  ]\n}')
    assert decode(b"21.5") == (Encoding.JSON, "21.5")
    assert decode(b"hello {") == (Encoding.TEXT, "hello {")
    assert decode(b"\xff\x00\x10") == (Encoding.HEX, "ff 00 10")


def test_identity_wildcards_and_sources():
    sensor = record("sensor-1", "thermo")
    pump = record("pump-2", source=Source.TWIN)
    assert EventFilter("sensor-*").matches(sensor)
    assert not EventFilter("sensor-*").matches(pump)
    assert EventFilter("sens").matches(sensor)  # no wildcard: a part of the id
    assert EventFilter("*/thermo").matches(sensor)
    assert not EventFilter("*/thermo").matches(pump)
    assert EventFilter("sensor-1/therm?").matches(sensor)
    twins_only = EventFilter(sources=frozenset({Source.TWIN}))
    assert twins_only.matches(pump) and not twins_only.matches(sensor)


class Count:
    def __init__(self) -> None:
        self.inserts = self.removes = 0

    def rows_about_to_be_removed(self, first, last):
        self.removes += 1

    def rows_removed(self): ...
    def rows_about_to_be_inserted(self, first, last):
        self.inserts += 1

    def rows_inserted(self): ...
    def about_to_reset(self): ...
    def reset(self): ...


def test_memory_stays_bounded_and_drops_are_counted():
    count = Count()
    log = EventLog(capacity=100, listener=count)
    for start in range(0, 1000, 250):
        log.extend(record(f"d{i}") for i in range(start, start + 250))
    assert len(log) == log.total == 100
    assert log.dropped == 900
    assert log.record(0).device_id == "d900"
    assert count.inserts == 4  # one insertion per batch, not per event


def test_filtering_keeps_what_is_hidden_and_pause_holds_arrivals():
    log = EventLog()
    log.extend([record("a"), record("b"), record("a")])
    log.set_filter(EventFilter("a"))
    assert len(log) == 2 and log.total == 3
    log.pause()
    log.extend([record("a")])
    assert len(log) == 2 and log.held == 1
    log.resume()
    assert len(log) == 3
    log.clear()
    assert len(log) == 0 and log.total == 0
