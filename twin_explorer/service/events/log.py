"""The Events view's state without Qt: the newest events in a bounded ring (rows and
bytes), the ones the filter lets through, pause and the count of dropped events.

Like ``PatchLog``, it takes whole batches and tells a ``RowListener`` one removal and one
insertion per batch, so a Qt model over it repaints per batch, never per event."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from twin_explorer.service.events.filter import EventFilter
from twin_explorer.service.events.record import EventRecord
from twin_explorer.service.patchlog import RowListener, _Ring, _Silent

DEFAULT_CAPACITY = 20_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
ROW_OVERHEAD = 600  # a record's objects besides its body, roughly


def _size(record: EventRecord) -> int:
    return len(record.body) + ROW_OVERHEAD


class EventLog:
    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        listener: RowListener | None = None,
    ) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.listener: RowListener = listener or _Silent()
        self._rows: deque[EventRecord] = deque()
        self._visible: _Ring = _Ring()  # holds EventRecords here
        self._bytes = 0
        self._filter = EventFilter()
        self._paused = False
        self._held: deque[EventRecord] = deque(maxlen=capacity)
        self.dropped = 0  # let go because the log was full
        self.received = 0  # every event that came, this session

    def __len__(self) -> int:
        return len(self._visible)

    def record(self, index: int) -> EventRecord:
        return self._visible[index]  # type: ignore[return-value]

    def kept(self) -> list[EventRecord]:
        """Every event kept, shown or not, oldest first."""
        return list(self._rows)  # type: ignore[arg-type]

    def visible(self) -> list[EventRecord]:
        return list(self._visible)  # type: ignore[arg-type]

    @property
    def total(self) -> int:
        return len(self._rows)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def filter(self) -> EventFilter:
        return self._filter

    @property
    def paused(self) -> bool:
        return self._paused

    def extend(self, records: Iterable[EventRecord]) -> int:
        """Add a batch in arrival order; returns how many rows became visible."""
        batch = list(records)
        if self._paused:
            overflow = len(self._held) + len(batch) - self.capacity
            self.dropped += max(0, overflow)
            self._held.extend(batch)
            return 0
        self.received += len(batch)
        if len(batch) > self.capacity:
            self.dropped += len(batch) - self.capacity
            batch = batch[-self.capacity :]
        incoming = sum(_size(r) for r in batch)
        self._trim(len(batch), incoming)
        self._rows.extend(batch)
        self._bytes += incoming
        shown = batch if self._filter.is_empty else [r for r in batch if self._filter.matches(r)]
        if shown:
            first = len(self._visible)
            self.listener.rows_about_to_be_inserted(first, first + len(shown) - 1)
            self._visible.extend(shown)  # type: ignore[arg-type]
            self.listener.rows_inserted()
        return len(shown)

    def _trim(self, incoming: int, incoming_bytes: int) -> None:
        rows = self._rows
        drop = freed = 0
        while drop < len(rows) and (
            len(rows) - drop > self.capacity - incoming
            or self._bytes - freed > self.max_bytes - incoming_bytes
        ):
            freed += _size(rows[drop])
            drop += 1
        if not drop:
            return
        gone = {id(rows[i]) for i in range(drop)}
        hidden = 0  # visible rows among the dropped: always a prefix of the visible ones
        while hidden < len(self._visible) and id(self._visible[hidden]) in gone:
            hidden += 1
        if hidden:
            self.listener.rows_about_to_be_removed(0, hidden - 1)
        for _ in range(drop):
            rows.popleft()
        self._bytes -= freed
        self.dropped += drop
        if hidden:
            self._visible.drop_front(hidden)
            self.listener.rows_removed()

    def set_filter(self, event_filter: EventFilter) -> None:
        if event_filter == self._filter:
            return
        self.listener.about_to_reset()
        self._filter = event_filter
        self._visible = _Ring()
        self._visible.extend(r for r in self._rows if event_filter.matches(r))  # type: ignore[misc]
        self.listener.reset()

    def clear(self) -> None:
        self.listener.about_to_reset()
        self._rows.clear()
        self._visible.clear()
        self._held.clear()
        self._bytes = 0
        self.listener.reset()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> int:
        """Show what arrived while paused (the newest ``capacity`` of it)."""
        self._paused = False
        held, self._held = list(self._held), deque(maxlen=self.capacity)
        return self.extend(held) if held else 0
