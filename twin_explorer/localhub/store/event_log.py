"""The hub's durable event log: what the Event Hub-compatible endpoint and the app read.

Events (telemetry, twin changes, lifecycle, connection state) land in partitions chosen
by device id, as IoT Hub's built-in endpoint does. Each partition numbers its events
with a sequence number from 0 and a byte offset (where the event starts in the
partition's stream of bodies, an empty one counting as one byte); each event also
carries its enqueued time and a per identity, per kind sequence number. Retention
drops events older than ``max_age`` and,
per partition, all but the newest ``max_events`` events and ``max_bytes`` of bodies.

Appends are cheap on purpose: each is encoded once into a row in memory, and the rows
are written in one transaction (WAL, ``synchronous=NORMAL``: it survives a crash of the
hub's process, not a power cut, and costs no fsync) when :meth:`EventLog.flush` runs,
when ``FLUSH_EVENTS`` wait, and before every read. Whoever must not acknowledge an event
before it is written (a PUBACK for telemetry: IoT Hub may duplicate a QoS 1 message, never
drop it) asks :meth:`EventLog.when_committed`; the core's group commit flushes once per
loop turn for everything that arrived in it (core/group_commit.py).

Sequence numbers and offsets never repeat, even once retention or a deletion emptied a
partition: each commit also writes every partition's next (sequence, offset) to ``meta``,
and a reopened log starts from whichever is higher, that or the newest row. Readers
that follow the log live (the Event Hub-compatible endpoint) hear of events once they
are written (:meth:`EventLog.on_written`), so nothing is seen that a crash could take back.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twin_explorer.localhub.errors import DiskFull
from twin_explorer.localhub.store.sqlite import Store

logger = logging.getLogger(__name__)

PARTITIONS = 4  # IoT Hub's default for the built-in endpoint
FLUSH_SECONDS = 0.25
FLUSH_EVENTS = 512
# Retention runs with a commit at most this often: it costs a few index lookups.
TRIM_SECONDS = 1.0
DAY_NS = 24 * 3600 * 10**9
_HIGH_WATER = "events.next."  # meta key prefix: "<sequence>,<offset>" per partition


@dataclass(frozen=True)
class Retention:
    """How much of each partition is kept (IoT Hub keeps one day by default)."""

    max_age_ns: int = DAY_NS
    max_events: int = 100_000
    max_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    partition: int
    sequence: int
    offset: int
    enqueued_ns: int
    kind: str
    device_id: str
    module_id: str | None
    identity_sequence: int
    properties: dict[str, Any]
    system_properties: dict[str, Any]
    body: bytes


def partition_of(device_id: str, partitions: int = PARTITIONS) -> int:
    """The partition of a device's events: stable across restarts and processes."""
    return zlib.crc32(device_id.encode("utf-8")) % partitions


_COLUMNS = (
    "partition, sequence, byte_offset, enqueued_ns, kind, device_id, module_id, "
    "identity_sequence, properties, system_properties, body"
)


# One encoder for every event: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _dumps(value: dict[str, Any]) -> str:
    return _encode(value) if value else "{}"


def _row_event(row: tuple) -> LoggedEvent:
    p, seq, off, ns, kind, dev, mod, iseq, props, sysprops, body = row
    return LoggedEvent(
        p,
        seq,
        off,
        ns,
        kind,
        dev,
        mod or None,
        iseq,
        json.loads(props),
        json.loads(sysprops),
        bytes(body),
    )


class EventLog:
    """Append, read by partition or identity, and trim the ``events`` table."""

    def __init__(
        self,
        store: Store,
        *,
        partitions: int = PARTITIONS,
        retention: Retention | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.partitions = partitions
        self.retention = retention or Retention()
        self._monotonic = monotonic
        self._pending: list[tuple] = []  # rows as INSERT takes them
        self._waiting: list[Callable[[bool], None]] = []  # when_committed callbacks
        self._last_flush = monotonic()
        self._last_trim = monotonic()
        self._untrimmed_ns: int | None = None  # newest enqueued time written since a trim
        self._next: list[tuple[int, int]] = []  # (sequence, offset) per partition
        for partition in range(partitions):
            row = store.conn.execute(
                "SELECT sequence, byte_offset, max(length(body), 1) FROM events "
                "WHERE partition = ? ORDER BY sequence DESC LIMIT 1",
                (partition,),
            ).fetchone()
            newest = (0, 0) if row is None else (row[0] + 1, row[1] + row[2])
            self._next.append(max(newest, self._high_water(partition)))
        self._identity_counts: dict[tuple[str, str, str], int] = {}
        self._pending_events: list[LoggedEvent] = []  # the same, for on_written listeners
        self._listeners: list[Callable[[list[LoggedEvent]], None]] = []

    def _high_water(self, partition: int) -> tuple[int, int]:
        text = self._store.get_meta(f"{_HIGH_WATER}{partition}")
        if not text:
            return (0, 0)
        sequence, _, offset = text.partition(",")
        return (int(sequence), int(offset))

    def on_written(self, callback: Callable[[list[LoggedEvent]], None]) -> Callable[[], None]:
        """Call ``callback(events)`` with the events of every commit once it is written;
        returns the way to stop. Callbacks run on the thread that flushes."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    # -- writing ------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        device_id: str,
        module_id: str | None,
        enqueued_ns: int,
        properties: dict[str, Any],
        system_properties: dict[str, Any],
        body: bytes,
    ) -> None:
        """Take one event; it is written with the next commit."""
        partition = partition_of(device_id, self.partitions)
        sequence, offset = self._next[partition]
        # An empty body still takes an offset: offsets never repeat (nor do positions).
        self._next[partition] = (sequence + 1, offset + max(len(body), 1))
        key = (device_id, module_id or "", kind)
        count = self._identity_counts.get(key)
        if count is None:
            count = self._identity_count(key)
        self._identity_counts[key] = count + 1
        body = bytes(body)
        head = (partition, sequence, offset, enqueued_ns, kind, device_id)
        row = (*head, module_id or "", count + 1, _dumps(properties), _dumps(system_properties))
        self._pending.append((*row, body))
        if self._listeners:
            self._pending_events.append(
                LoggedEvent(
                    *head, module_id or None, count + 1, properties, system_properties, body
                )
            )
        if (
            len(self._pending) >= FLUSH_EVENTS
            or self._monotonic() - self._last_flush >= FLUSH_SECONDS
        ):
            self.flush()

    @property
    def pending(self) -> int:
        """Events taken but not written yet."""
        return len(self._pending)

    def when_committed(self, callback: Callable[[bool], None]) -> None:
        """``callback(True)`` once every event taken so far is written (now, if it is);
        ``callback(False)`` if writing them failed (the disk is full): they are lost."""
        if self._pending:
            self._waiting.append(callback)
        else:
            callback(True)

    def _identity_count(self, key: tuple[str, str, str]) -> int:
        count = self._identity_counts.get(key)
        if count is None:
            self.flush()
            row = self._store.conn.execute(
                "SELECT max(identity_sequence) FROM events "
                "WHERE device_id = ? AND module_id = ? AND kind = ?",
                key,
            ).fetchone()
            count = self._identity_counts[key] = row[0] or 0
        return count

    def flush(self, *, trim: bool = False) -> None:
        """Write pending events in one transaction without fsync and tell whoever waits
        for them. Retention runs with it at most every ``TRIM_SECONDS``, or when ``trim``."""
        self._last_flush = now = self._monotonic()
        rows, self._pending = self._pending, []
        events, self._pending_events = self._pending_events, []
        waiting, self._waiting = self._waiting, []
        if rows:
            self._untrimmed_ns = rows[-1][3]
        until_ns = self._untrimmed_ns
        trim = until_ns is not None and (
            trim or len(rows) >= FLUSH_EVENTS or now - self._last_trim >= TRIM_SECONDS
        )
        written = False
        try:
            if rows or trim:
                with self._store.transaction(durable=False) as conn:
                    if rows:
                        conn.executemany(
                            f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                            rows,
                        )
                        conn.executemany(
                            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                            "DO UPDATE SET value = excluded.value",
                            [
                                (f"{_HIGH_WATER}{p}", f"{self._next[p][0]},{self._next[p][1]}")
                                for p in sorted({row[0] for row in rows})
                            ],
                        )
                    if trim:
                        self._trim(conn, until_ns)
                if trim:
                    self._last_trim, self._untrimmed_ns = now, None
            written = True
        except DiskFull:
            pass  # the store said so once; the events are lost, the hub goes on
        finally:
            if written and events:
                for listener in list(self._listeners):
                    try:
                        listener(events)
                    except Exception:
                        logger.exception("event log listener %r failed", listener)
            for callback in waiting:
                try:
                    callback(written)
                except Exception:
                    logger.exception("event log commit callback %r failed", callback)

    def _trim(self, conn: Any, now_ns: int) -> None:
        keep = self.retention
        conn.execute("DELETE FROM events WHERE enqueued_ns < ?", (now_ns - keep.max_age_ns,))
        for partition, (sequence, offset) in enumerate(self._next):
            # Offsets grow with sequence numbers: the first event inside the byte budget,
            # found walking the primary key from the oldest kept event (which, once
            # trimmed, is already inside it), so no scan of the partition.
            row = conn.execute(
                "SELECT sequence FROM events WHERE partition = ? AND byte_offset >= ? "
                "ORDER BY sequence LIMIT 1",
                (partition, offset - keep.max_bytes),
            ).fetchone()
            first = max(sequence - keep.max_events, sequence if row is None else row[0])
            conn.execute(
                "DELETE FROM events WHERE partition = ? AND sequence < ?", (partition, first)
            )

    # -- reading ------------------------------------------------------------------------

    def read(self, partition: int, from_sequence: int = 0, limit: int = 100) -> list[LoggedEvent]:
        """Events of one partition from ``from_sequence`` on, oldest first."""
        self.flush(trim=True)
        rows = self._store.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE partition = ? AND sequence >= ? "
            "ORDER BY sequence LIMIT ?",
            (partition, from_sequence, limit),
        ).fetchall()
        return [_row_event(row) for row in rows]

    def bounds(self, partition: int) -> tuple[int, int]:
        """(first kept sequence, next sequence) of a partition; equal when it is empty."""
        self.flush(trim=True)
        row = self._store.conn.execute(
            "SELECT min(sequence) FROM events WHERE partition = ?", (partition,)
        ).fetchone()
        following = self._next[partition][0]
        return (following if row[0] is None else row[0], following)

    def last(self, partition: int) -> LoggedEvent | None:
        """The newest kept event of a partition."""
        self.flush(trim=True)
        row = self._store.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE partition = ? ORDER BY sequence DESC LIMIT 1",
            (partition,),
        ).fetchone()
        return None if row is None else _row_event(row)

    def first_from_offset(self, partition: int, offset: int) -> int:
        """The sequence number of the first kept event at or after byte ``offset`` (the
        next sequence number if there is none)."""
        return self._first(partition, "byte_offset >= ?", offset)

    def first_from_time(self, partition: int, enqueued_ns: int) -> int:
        """The sequence number of the first kept event enqueued at or after ``enqueued_ns``."""
        return self._first(partition, "enqueued_ns >= ?", enqueued_ns)

    def _first(self, partition: int, condition: str, value: int) -> int:
        self.flush(trim=True)
        row = self._store.conn.execute(
            f"SELECT min(sequence) FROM events WHERE partition = ? AND {condition}",
            (partition, value),
        ).fetchone()
        return self._next[partition][0] if row[0] is None else row[0]

    def recent(
        self, kind: str, device_id: str, module_id: str | None, limit: int | None
    ) -> list[LoggedEvent]:
        """The newest ``limit`` events of one kind from one identity, oldest first."""
        self.flush(trim=True)
        rows = self._store.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE device_id = ? AND module_id = ? AND kind = ? "
            "ORDER BY identity_sequence DESC LIMIT ?",
            (device_id, module_id or "", kind, -1 if limit is None else limit),
        ).fetchall()
        return [_row_event(row) for row in reversed(rows)]

    def count(self, kind: str, device_id: str, module_id: str | None) -> int:
        """Events of one kind an identity has sent, including those retention dropped."""
        return self._identity_count((device_id, module_id or "", kind))

    def forget(self, kind: str, device_id: str, module_id: str | None) -> None:
        """Drop an identity's events of one kind; None as module: the device's modules too."""
        self.flush(trim=True)
        if module_id is None:
            where, args = "device_id = ? AND kind = ?", (device_id, kind)
        else:
            where, args = (
                "device_id = ? AND module_id = ? AND kind = ?",
                (device_id, module_id, kind),
            )
        with self._store.transaction(durable=False) as conn:
            conn.execute(f"DELETE FROM events WHERE {where}", args)
        for key in [k for k in self._identity_counts if k[0] == device_id and k[2] == kind]:
            if module_id is None or key[1] == module_id:
                del self._identity_counts[key]

    def close(self) -> None:
        self.flush(trim=True)
