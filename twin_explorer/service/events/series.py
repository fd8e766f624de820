"""Numeric fields of telemetry over time, per device/module, for the live chart.

People pick a JSON path (``temperature``, ``engine.rpm``, ``values[0]``); every
telemetry event that has a number there adds a point to the series of its identity and
path. Series and points are bounded (the oldest points go first), so a chart left open
on a busy hub keeps a flat memory."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.events.stream import EventStream
from twin_explorer.service.observable import Listeners

MAX_POINTS = 2_000  # per series
MAX_SERIES = 32
MAX_PATHS = 64  # numeric paths offered for one event
_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class PathError(ValueError):
    """A JSON path people typed that cannot name a field."""


def parse_path(text: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` as steps (names and list indices); PathError in plain words."""
    text = text.strip()
    if not text:
        raise PathError("Type a JSON path, e.g. temperature or engine.rpm")
    if not _PATH.fullmatch(text):
        raise PathError(f"{text!r} is not a JSON path (use dots: a.b, and [0] for lists)")
    steps: list[str | int] = [int(index) if index else name for name, index in _STEP.findall(text)]
    return tuple(steps)


def value_at(doc: Any, steps: tuple[str | int, ...]) -> float | None:
    """The number at ``steps`` in ``doc``, or None (absent, or not a number)."""
    for step in steps:
        listed = isinstance(step, int) and isinstance(doc, list) and step < len(doc)
        keyed = isinstance(step, str) and isinstance(doc, dict) and step in doc
        if not (listed or keyed):
            return None
        doc = doc[step]
    if isinstance(doc, bool) or not isinstance(doc, int | float):
        return None
    return float(doc)


def numeric_paths(doc: Any, limit: int = MAX_PATHS) -> list[str]:
    """The paths of the numbers in a JSON document, in document order (for the picker)."""
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value[:limit]):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, int | float) and not isinstance(value, bool) and path:
            found.append(path)

    walk(doc, "")
    return found


@dataclass(eq=False)
class Series:
    identity: str
    path: str
    times: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    values: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))

    @property
    def name(self) -> str:
        return f"{self.identity} · {self.path}"


class Plots:
    """The paths plotted and their series, fed by the stream's batches."""

    def __init__(self, stream: EventStream, *, max_series: int = MAX_SERIES) -> None:
        self.stream = stream
        self.max_series = max_series
        self.paths: dict[str, tuple[str | int, ...]] = {}
        self._series: dict[tuple[str, str], Series] = {}
        self.skipped = 0  # points not kept because the series limit was reached
        self.changed: Listeners[None] = Listeners()
        self._unsubscribe = stream.batches.subscribe(self._batch)

    def __iter__(self) -> Iterator[Series]:
        return iter(self._series.values())

    def __len__(self) -> int:
        return len(self._series)

    def plot(self, text: str) -> str:
        """Plot the field at this path (PathError when it is not one), starting from the
        telemetry already kept; returns the path as stored."""
        steps = parse_path(text)
        path = text.strip()
        if path not in self.paths:
            self.paths[path] = steps
            self._add(self.stream.log.kept(), {path: steps})
            self.changed.emit(None)
        return path

    def remove(self, path: str) -> None:
        self.paths.pop(path, None)
        for key in [key for key in self._series if key[1] == path]:
            del self._series[key]
        self.changed.emit(None)

    def clear(self) -> None:
        self.paths.clear()
        self._series.clear()
        self.changed.emit(None)

    def close(self) -> None:
        self._unsubscribe()

    def _batch(self, batch: list[EventRecord]) -> None:
        if self.paths and self._add(batch, self.paths):
            self.changed.emit(None)

    def _add(self, records: Iterable[EventRecord], paths: dict[str, tuple]) -> int:
        added = 0
        for record in records:
            if record.source is not Source.TELEMETRY:
                continue
            doc = record.json()
            if doc is None:
                continue
            when = record.time.timestamp()
            for path, steps in paths.items():
                value = value_at(doc, steps)
                if value is None:
                    continue
                key = (record.identity, path)
                series = self._series.get(key)
                if series is None:
                    if len(self._series) >= self.max_series:
                        self.skipped += 1
                        continue
                    series = self._series[key] = Series(record.identity, path)
                series.times.append(when)
                series.values.append(value)
                added += 1
        return added
