"""The Qt-free patch log: ring buffer, filters, pause, export, row notifications."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.service.patchlog import PatchFilter, PatchLog, read_jsonl, write_jsonl
from twin_explorer.twin.events import Direction, PatchEvent, Section


def event(n: int = 0, *, device: str = "d1", module: str | None = None, **kw) -> PatchEvent:
    base = dict(
        device_id=device,
        module_id=module,
        direction=Direction.SENT,
        section=Section.DESIRED,
        body={"n": n},
        version=n,
        time="2026-01-01T00:00:00.0000000Z",
    )
    return PatchEvent(**{**base, **kw})


class Recorder:
    """A RowListener that checks begin/end pairing and replays changes on a plain list."""

    def __init__(self, log: PatchLog) -> None:
        self.log = log
        self.mirror: list[PatchEvent] = []
        self.calls: list[tuple] = []
        self._open: tuple | None = None

    def _begin(self, kind: str, first: int = 0, last: int = 0) -> None:
        assert self._open is None, f"{kind} inside {self._open}"
        self._open = (kind, first, last)
        self.calls.append(self._open)

    def _end(self, kind: str) -> None:
        assert self._open is not None and self._open[0] == kind
        _, first, last = self._open
        self._open = None
        if kind == "remove":
            del self.mirror[first : last + 1]
        elif kind == "insert":
            self.mirror[first:first] = [self.log.event(i) for i in range(first, last + 1)]
        else:
            self.mirror = self.log.visible()
        assert self.mirror == self.log.visible()

    def rows_about_to_be_removed(self, first: int, last: int) -> None:
        assert 0 <= first <= last < len(self.mirror)
        self._begin("remove", first, last)

    def rows_removed(self) -> None:
        self._end("remove")

    def rows_about_to_be_inserted(self, first: int, last: int) -> None:
        assert first == len(self.mirror) and last >= first
        self._begin("insert", first, last)

    def rows_inserted(self) -> None:
        self._end("insert")

    def about_to_reset(self) -> None:
        self._begin("reset")

    def reset(self) -> None:
        self._end("reset")


def recorded(capacity: int = 10, **kw) -> tuple[PatchLog, Recorder]:
    log = PatchLog(capacity, **kw)
    recorder = Recorder(log)
    log.listener = recorder
    return log, recorder


def test_ring_keeps_the_newest_and_drops_the_oldest():
    log, recorder = recorded(capacity=5)
    log.extend(event(i) for i in range(3))
    log.extend(event(i) for i in range(3, 8))
    assert [e.body["n"] for e in log.visible()] == [3, 4, 5, 6, 7]
    assert log.total == 5 and log.dropped == 3
    # One removal and one insertion per batch.
    assert [c[0] for c in recorder.calls] == ["insert", "remove", "insert"]


def test_a_batch_larger_than_capacity_keeps_its_tail():
    log, _ = recorded(capacity=4)
    log.extend(event(i) for i in range(2))
    log.extend(event(i) for i in range(10, 20))
    assert [e.body["n"] for e in log.visible()] == [16, 17, 18, 19]
    assert log.dropped == 8


def test_50k_events_into_capacity_10k_keep_10k():
    log = PatchLog(10_000)
    for start in range(0, 50_000, 500):
        log.extend(event(i) for i in range(start, start + 500))
    assert len(log) == log.total == 10_000
    assert log.dropped == 40_000
    assert log.event(0).body["n"] == 40_000 and log.event(-1).body["n"] == 49_999


def test_memory_stops_growing_once_the_ring_is_full():
    log = PatchLog(1_000)
    tracemalloc.start()
    try:
        log.extend(event(i) for i in range(1_000))
        full, _ = tracemalloc.get_traced_memory()
        for start in range(1_000, 6_000, 250):
            log.extend(event(i) for i in range(start, start + 250))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert log.total == 1_000
    # Five times more events than the ring holds: memory stays where a full ring put it.
    assert after < full * 1.15, (full, after)


def test_byte_budget_drops_rows_too():
    log = PatchLog(1000, max_bytes=20_000)
    log.extend(event(i, body={"blob": "x" * 1000}) for i in range(50))
    assert log.bytes <= 20_000
    assert 0 < log.total < 50
    assert log.visible()[-1].version == 49


def test_filters_by_identity_direction_and_text():
    log, _ = recorded(capacity=100)
    log.extend(
        [
            event(1, device="pump-1", body={"speed": 10}),
            event(2, device="pump-2", module="ctrl", direction=Direction.REPORTED),
            event(3, device="valve-1", direction=Direction.OBSERVED, body={"open": True}),
            event(4, device="pump-1", direction=Direction.OBSERVED, body={"Speed": 99}),
        ]
    )
    log.set_filter(PatchFilter(identity="PUMP"))
    assert [e.version for e in log.visible()] == [1, 2, 4]
    log.set_filter(PatchFilter(identity="pump-2/ctrl"))
    assert [e.version for e in log.visible()] == [2]
    log.set_filter(PatchFilter(directions=frozenset({Direction.OBSERVED})))
    assert [e.version for e in log.visible()] == [3, 4]
    log.set_filter(PatchFilter(text="speed"))
    assert [e.version for e in log.visible()] == [1, 4]
    log.set_filter(PatchFilter("pump", frozenset({Direction.OBSERVED}), "speed"))
    assert [e.version for e in log.visible()] == [4]
    # New events are filtered as they arrive.
    log.append(event(5, device="pump-9", direction=Direction.OBSERVED, body={"speed": 1}))
    log.append(event(6, device="pump-9", direction=Direction.SENT, body={"speed": 1}))
    assert [e.version for e in log.visible()] == [4, 5]
    log.set_filter(PatchFilter())
    assert len(log) == log.total == 6


def test_dropping_hidden_rows_only_removes_visible_ones_from_the_view():
    log, recorder = recorded(capacity=4)
    log.set_filter(PatchFilter(directions=frozenset({Direction.OBSERVED})))
    log.extend(
        event(i, direction=Direction.OBSERVED if i % 2 else Direction.SENT) for i in range(4)
    )
    assert [e.version for e in log.visible()] == [1, 3]
    log.extend([event(10), event(11)])  # drops 0 (hidden) and 1 (visible)
    assert [e.version for e in log.visible()] == [3]
    assert recorder.calls[-1] == ("remove", 0, 0)


def test_pause_holds_events_and_resume_shows_them():
    log, _ = recorded(capacity=3)
    log.append(event(1))
    log.pause()
    log.extend(event(i) for i in range(2, 7))
    assert [e.version for e in log.visible()] == [1]
    assert log.held == 3  # bounded like the log
    log.resume()
    assert [e.version for e in log.visible()] == [4, 5, 6]


def test_clear_empties_everything():
    log, recorder = recorded()
    log.extend(event(i) for i in range(5))
    log.clear()
    assert len(log) == log.total == 0 and log.bytes == 0
    assert recorder.calls[-1][0] == "reset"


def test_shrinking_capacity_trims():
    log, _ = recorded(capacity=10)
    log.extend(event(i) for i in range(10))
    log.capacity = 3
    assert [e.version for e in log.visible()] == [7, 8, 9]
    with pytest.raises(ValueError):
        log.capacity = 0


def test_export_writes_the_visible_rows_as_json_lines(tmp_path):
    log, _ = recorded(capacity=100)
    log.extend(
        [
            event(1, device="a", body={"x": "é"}),
            event(2, device="b", direction=Direction.OBSERVED, section=Section.TAGS),
            event(3, device="a", module="m", direction=Direction.REPORTED),
        ]
    )
    log.set_filter(PatchFilter(identity="a"))
    path = tmp_path / "log.jsonl"
    assert log.export(path) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    rows = read_jsonl(path)
    assert rows == [e.to_json() for e in log.visible()]
    assert rows[0]["body"] == {"x": "é"} and rows[1]["identity"] == "a/m"
    assert not list(tmp_path.glob(".export-*"))


def test_export_failure_leaves_no_partial_file(tmp_path):
    def events():
        yield event(1)
        raise OSError("disk full")

    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(OSError):
        write_jsonl(target, events())
    assert target.read_text() == "old\n"
    assert not list(tmp_path.glob(".export-*"))


operations = st.lists(
    st.one_of(
        st.tuples(st.just("extend"), st.lists(st.sampled_from(list(Direction)), max_size=12)),
        st.tuples(st.just("filter"), st.sets(st.sampled_from(list(Direction)))),
        st.tuples(st.just("capacity"), st.integers(1, 12)),
        st.tuples(st.just("pause"), st.booleans()),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_visible_rows_always_match_a_plain_model(ops):
    """Whatever happens, the view equals: newest ``capacity`` kept rows, filtered."""
    log, _ = recorded(capacity=6)
    kept: list[PatchEvent] = []
    held: list[PatchEvent] = []
    paused = False
    counter = 0
    for op, arg in ops:
        if op == "extend":
            batch = []
            for direction in arg:
                counter += 1
                batch.append(event(counter, direction=direction))
            log.extend(batch)
            (held if paused else kept).extend(batch)
        elif op == "filter":
            log.set_filter(PatchFilter(directions=frozenset(arg)))
        elif op == "capacity":
            log.capacity = arg
        elif op == "pause":
            if arg:
                log.pause()
            else:
                log.resume()
                kept.extend(held[-log.capacity :])
                held = []
            paused = arg
        else:
            log.clear()
            kept, held = [], []
        held = held[-log.capacity :]
        kept = kept[-log.capacity :]
        directions = log.filter.directions
        expected = [e for e in kept if not directions or e.direction in directions]
        assert log.visible() == expected
        assert log.total == len(kept)


def test_method_calls_are_rows_that_filter_export_and_read_as_one_line(tmp_path):
    from twin_explorer.service.history import TwinHistory
    from twin_explorer.twin.events import method_call

    sent = method_call(
        "d1", "m1", Direction.SENT, name="reboot", payload={"delay": 5}, status=200,
        response={"ok": True}, seconds=0.0123, answered_by="module", source="method",
    )  # fmt: skip
    expired = method_call(
        "d1", "m1", Direction.RECEIVED, name="confirm", payload=None, status=None,
        seconds=30.0, answered_by="timeout", error="nobody answered within 30 s",
    )  # fmt: skip
    log = PatchLog()
    log.extend([event(1), sent, expired])
    assert log.row(1).shown == 'reboot({"delay":5}) → 200 {"ok":true} · 12 ms · module'
    assert log.row(2).shown == (
        "confirm(null) → no answer: nobody answered within 30 s · 30000 ms · timeout"
    )
    assert log.row(0).shown == '{"n":1}'  # patches still read as their JSON

    log.set_filter(PatchFilter(directions=frozenset({Direction.RECEIVED})))
    assert log.visible() == [expired]
    log.set_filter(PatchFilter(text="reboot"))
    assert log.visible() == [sent]
    log.set_filter(PatchFilter(text="method"))  # the section, as for any row
    assert log.visible() == [sent, expired]
    log.set_filter(PatchFilter())

    assert log.export(tmp_path / "log.jsonl") == 3
    rows = read_jsonl(tmp_path / "log.jsonl")
    assert rows[1]["section"] == "method"
    assert rows[1]["body"] == {
        "method": "reboot", "payload": {"delay": 5}, "status": 200, "response": {"ok": True},
        "ms": 12, "answeredBy": "module",
    }  # fmt: skip
    assert rows[2]["body"]["error"] == "nobody answered within 30 s"

    # A call changes no twin: history has no diff for it even when the twin was seen.
    history = TwinHistory()
    history.record({"deviceId": "d1", "moduleId": "m1", "properties": {"desired": {}}}, "2000")
    assert not sent.changes_twin and event(1).changes_twin
    assert history.change_for(sent) is None
