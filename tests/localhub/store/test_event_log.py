"""The durable event log: partitions, sequence numbers, offsets, retention, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.localhub.conftest import sas_body
from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.store.event_log import EventLog, Retention, partition_of
from twin_explorer.localhub.store.sqlite import Store

HOUR_NS = 3600 * 10**9


def _append(log: EventLog, device: str, body: bytes, at_ns: int = 10**18) -> None:
    log.append("telemetry", device, None, at_ns, {}, {}, body)


def test_sequence_numbers_and_offsets_per_partition(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    log = EventLog(store, partitions=4)
    for body in (b"aa", b"bbb", b"c"):
        _append(log, "d1", body)
    partition = partition_of("d1", 4)
    events = log.read(partition)
    assert [(e.sequence, e.offset, e.body) for e in events] == [
        (0, 0, b"aa"),
        (1, 2, b"bbb"),
        (2, 5, b"c"),
    ]
    assert log.bounds(partition) == (0, 3)
    assert [e.body for e in log.read(partition, from_sequence=2)] == [b"c"]
    store.close()


def test_the_log_survives_a_restart(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    log = EventLog(store)
    _append(log, "d1", b"before")
    log.close()  # writes the pending batch
    store.close()
    store = Store.open(tmp_path)
    log = EventLog(store)
    _append(log, "d1", b"after")
    partition = partition_of("d1")
    assert [(e.sequence, e.offset, e.body) for e in log.read(partition)] == [
        (0, 0, b"before"),
        (1, 6, b"after"),
    ]
    assert log.count("telemetry", "d1", None) == 2
    store.close()


def test_retention_by_age_count_and_bytes(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    log = EventLog(store, partitions=1, retention=Retention(HOUR_NS, 3, 10))
    _append(log, "d1", b"old", at_ns=10**18)
    _append(log, "d1", b"x", at_ns=10**18 + 2 * HOUR_NS)  # "old" is now past max age
    assert [e.body for e in log.read(0)] == [b"x"]
    for body in (b"1", b"2", b"3", b"4"):
        _append(log, "d1", body, at_ns=10**18 + 2 * HOUR_NS)
    assert [e.body for e in log.read(0)] == [b"2", b"3", b"4"]  # max 3 events
    _append(log, "d1", b"123456789", at_ns=10**18 + 2 * HOUR_NS)
    assert [e.body for e in log.read(0)] == [b"4", b"123456789"]  # max 10 bytes
    assert log.bounds(0) == (5, 7)
    store.close()


def test_hub_events_land_in_the_log(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    core.patch_twin("d1", None, {"properties": {"desired": {"x": 1}}}, None)
    core.record_telemetry("d1", None, {"p": "1"}, {}, b"hello")
    events = core.event_log.read(partition_of("d1"))
    kinds = [e.kind for e in events]
    assert kinds == ["deviceLifecycleEvents", "twinChangeEvents", "telemetry"]
    assert events[0].properties["opType"] == "createDeviceIdentity"  # IoT Hub's name
    assert events[-1].body == b"hello" and events[-1].properties == {"p": "1"}


def test_when_committed_waits_for_the_write(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    log = EventLog(store)
    said: list[bool] = []
    log.when_committed(said.append)
    assert said == [True]  # nothing pending: written already
    _append(log, "d1", b"x")
    log.when_committed(said.append)
    reader = store.open_reader()
    assert said == [True] and reader.execute("SELECT count(*) FROM events").fetchone() == (0,)
    log.flush()
    assert said == [True, True]
    assert reader.execute("SELECT count(*) FROM events").fetchone() == (1,)
    reader.close()
    store.close()


async def test_one_loop_turn_is_one_commit_and_acks_follow_it(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    identity = Identity("d1", None)
    acks: list[bool] = []
    commits = core.commits.commits
    for i in range(3):
        core.devices.telemetry(identity, {"i": str(i)}, {}, b"m")
        core.devices.after_commit(acks.append)
    assert acks == []  # nothing is acknowledged before it is written
    written = asyncio.get_running_loop().create_future()
    core.devices.after_commit(written.set_result)
    assert await written is True
    assert acks == [True, True, True] and core.commits.commits == commits + 1
    reader = core.store.open_reader()
    rows = reader.execute("SELECT count(*) FROM events WHERE kind = 'telemetry'").fetchone()
    reader.close()
    assert rows == (3,)


def test_positions_never_repeat_once_retention_emptied_a_partition(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    log = EventLog(store, partitions=1, retention=Retention(HOUR_NS, 100, 1000))
    _append(log, "d1", b"gone", at_ns=10**18)
    _append(log, "d1", b"", at_ns=10**18)  # an empty body still takes an offset
    log.close()
    store.close()
    store = Store.open(tmp_path)
    log = EventLog(store, partitions=1, retention=Retention(HOUR_NS, 100, 1000))
    _append(log, "d1", b"new", at_ns=10**18 + 2 * HOUR_NS)  # the old ones expire
    log.flush(trim=True)
    assert [(e.sequence, e.offset) for e in log.read(0)] == [(2, 5)]
    log.close()
    store.close()
    store = Store.open(tmp_path)
    log = EventLog(store, partitions=1, retention=Retention(HOUR_NS, 100, 1000))
    _append(log, "d1", b"x", at_ns=10**18 + 4 * HOUR_NS)  # "new" expires too
    log.flush(trim=True)
    assert [(e.sequence, e.offset) for e in log.read(0)] == [(3, 8)]
    store.close()
