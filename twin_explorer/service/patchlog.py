"""The patch log's state, without Qt: a bounded ring of patch events, a filter, export.

``PatchLog`` keeps the newest events up to ``capacity`` rows (and ``max_bytes`` of
compact JSON, so a few huge patches cannot blow memory either) and the *visible* rows:
the events that pass the current ``PatchFilter``, in arrival order. Filtering happens
here, once per event as it arrives, so the Qt model over it needs no proxy model.

Views learn about row changes through a ``RowListener`` (begin/end pairs shaped like
Qt's), told *before* and *after* each change so a Qt model can call ``beginInsertRows``
at the right moment. ``extend`` takes a whole batch: one removal (oldest rows) and one
insertion (new rows) per batch, however many events it holds.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from twin_explorer.twin.events import Direction, PatchEvent

DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# What the table shows of a patch; the details view shows all of it.
SHOWN_CHARS = 400
# PatchEvent.compact's output, with one encoder made once (json.dumps builds one per call).
_COMPACT = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class RowListener(Protocol):
    """Told before and after each change to the visible rows, like a Qt model's begin/end."""

    def rows_about_to_be_removed(self, first: int, last: int) -> None: ...
    def rows_removed(self) -> None: ...
    def rows_about_to_be_inserted(self, first: int, last: int) -> None: ...
    def rows_inserted(self) -> None: ...
    def about_to_reset(self) -> None: ...
    def reset(self) -> None: ...


@dataclass(frozen=True)
class PatchFilter:
    """Which rows are visible. Empty text fields and an empty direction set match all."""

    identity: str = ""  # substring of "device/module", case-insensitive
    directions: frozenset[Direction] = frozenset()
    text: str = ""  # substring of the compact JSON, section or source, case-insensitive

    @cached_property
    def _identity(self) -> str:
        return self.identity.strip().casefold()

    @cached_property
    def _text(self) -> str:
        return self.text.strip().casefold()

    @property
    def is_empty(self) -> bool:
        return not (self._identity or self.directions or self._text)

    def matches(self, row: LogRow) -> bool:
        if self.directions and row.event.direction not in self.directions:
            return False
        if self._identity and self._identity not in row.event.identity.casefold():
            return False
        return not self._text or self._text in row.haystack


@dataclass(eq=False)
class LogRow:
    """One event with what the table and the filter need, computed once."""

    event: PatchEvent
    compact: str
    seq: int  # arrival order in this log (event ids need not arrive in order)
    _haystack: str | None = field(default=None, repr=False)
    _shown: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        if self._shown is None:  # a method call reads better as a line than as its JSON
            text = self.event.summary() or self.compact
            self._shown = text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
        return self._shown

    @property
    def haystack(self) -> str:
        if self._haystack is None:  # only text filters need it; build on first use
            event = self.event
            self._haystack = " ".join(
                (self.compact, event.section.value, event.source, event.identity)
            ).casefold()
        return self._haystack

    @property
    def size(self) -> int:
        # A rough cost of keeping the row: its text plus the parsed body (about 3x).
        return 4 * len(self.compact) + 200


class _Ring:
    """A list with cheap removal at the front and O(1) indexing (a deque indexes in O(n))."""

    __slots__ = ("_items", "_start")

    def __init__(self) -> None:
        self._items: list[LogRow] = []
        self._start = 0

    def __len__(self) -> int:
        return len(self._items) - self._start

    def __getitem__(self, index: int) -> LogRow:
        size = len(self._items) - self._start
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(index)
        return self._items[self._start + index]

    def __iter__(self) -> Iterator[LogRow]:
        for index in range(self._start, len(self._items)):
            yield self._items[index]

    def first(self) -> LogRow | None:
        return self._items[self._start] if len(self) else None

    def extend(self, rows: Iterable[LogRow]) -> None:
        self._items.extend(rows)

    def drop_front(self, count: int) -> None:
        self._start += count
        # Compact once half the list is dead: amortised O(1) per dropped row.
        if self._start > 1024 and self._start * 2 > len(self._items):
            del self._items[: self._start]
            self._start = 0

    def clear(self) -> None:
        self._items = []
        self._start = 0


class _Silent(RowListener):
    """Nobody is looking: every notification does nothing (the Protocol's bodies)."""


class PatchLog:
    """The newest ``capacity`` events, the filtered visible rows, pause and export."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        listener: RowListener | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self.max_bytes = max_bytes
        self.listener: RowListener = listener or _Silent()
        self._rows: deque[LogRow] = deque()
        self._bytes = 0
        self._visible = _Ring()
        self._filter = PatchFilter()
        self._paused = False
        self._held: deque[PatchEvent] = deque(maxlen=capacity)
        self.dropped = 0  # events let go because the log was full, this session
        self._seq = 0

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Visible rows (what the table shows)."""
        return len(self._visible)

    def row(self, index: int) -> LogRow:
        return self._visible[index]

    def event(self, index: int) -> PatchEvent:
        return self._visible[index].event

    def visible(self) -> list[PatchEvent]:
        return [row.event for row in self._visible]

    @property
    def total(self) -> int:
        """Rows kept, visible or not."""
        return len(self._rows)

    @property
    def held(self) -> int:
        """Events waiting while paused."""
        return len(self._held)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        if value < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = value
        self._held = deque(self._held, maxlen=value)
        self._trim(0)

    @property
    def filter(self) -> PatchFilter:
        return self._filter

    # -- writing -----------------------------------------------------------------------

    def extend(self, events: Iterable[PatchEvent]) -> int:
        """Add a batch in arrival order; returns how many rows became visible."""
        events = list(events)
        if self._paused:
            self._held.extend(events)
            return 0
        if len(events) > self._capacity:
            self.dropped += len(events) - self._capacity
            events = events[-self._capacity :]
        start = self._seq
        self._seq += len(events)
        encode = _COMPACT.encode
        rows = [LogRow(event, encode(event.body), start + i) for i, event in enumerate(events)]
        incoming = sum(row.size for row in rows)
        while len(rows) > 1 and incoming > self.max_bytes:  # a batch of huge patches
            incoming -= rows.pop(0).size
            self.dropped += 1
        self._trim(len(rows), incoming)
        self._rows.extend(rows)
        self._bytes += incoming
        shown = rows if self._filter.is_empty else [r for r in rows if self._filter.matches(r)]
        if shown:
            first = len(self._visible)
            self.listener.rows_about_to_be_inserted(first, first + len(shown) - 1)
            self._visible.extend(shown)
            self.listener.rows_inserted()
        return len(shown)

    def append(self, event: PatchEvent) -> int:
        return self.extend((event,))

    def _trim(self, incoming: int, incoming_bytes: int = 0) -> None:
        """Drop the oldest rows so ``incoming`` more fit; visible ones leave the view too."""
        drop = 0
        room = self._capacity - incoming
        budget = self.max_bytes - incoming_bytes
        freed = 0
        rows = self._rows
        while drop < len(rows) and (len(rows) - drop > room or self._bytes - freed > budget):
            freed += rows[drop].size
            drop += 1
        if not drop:
            return
        last_dropped = rows[drop - 1].seq
        hidden = 0  # visible rows among the dropped: always a prefix of the visible list
        while hidden < len(self._visible) and self._visible[hidden].seq <= last_dropped:
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

    def set_filter(self, patch_filter: PatchFilter) -> None:
        if patch_filter == self._filter:
            return
        self.listener.about_to_reset()
        self._filter = patch_filter
        self._visible = _Ring()
        if patch_filter.is_empty:
            self._visible.extend(self._rows)
        else:
            self._visible.extend(row for row in self._rows if patch_filter.matches(row))
        self.listener.reset()

    def clear(self) -> None:
        self.listener.about_to_reset()
        self._rows.clear()
        self._visible.clear()
        self._held.clear()
        self._bytes = 0
        self.listener.reset()

    # -- pause -------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> int:
        """Show what arrived while paused (the newest ``capacity`` of it)."""
        self._paused = False
        held, self._held = list(self._held), deque(maxlen=self._capacity)
        return self.extend(held) if held else 0

    # -- export ------------------------------------------------------------------------

    def export(self, path: str | os.PathLike[str]) -> int:
        """Write the visible rows as JSON Lines (one ``PatchEvent.to_json`` per line).

        Written to a temporary file first and renamed, so a failed export never leaves
        half a file where an old one was. Returns the number of rows written.
        """
        return write_jsonl(path, self.visible())


def write_jsonl(path: str | os.PathLike[str], events: Iterable[PatchEvent]) -> int:
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=".export-", suffix=".jsonl", dir=target.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for event in events:
                out.write(json.dumps(event.to_json(), ensure_ascii=False, sort_keys=True))
                out.write("\n")
                count += 1
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return count


def read_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    """The objects of a JSON Lines file (what ``export`` wrote)."""
    with open(path, encoding="utf-8") as source:
        return [json.loads(line) for line in source if line.strip()]
