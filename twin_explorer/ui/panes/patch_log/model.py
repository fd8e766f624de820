"""A thin Qt table model over the Qt-free ``PatchLog``.

Events are not inserted one by one: ``push`` queues them and a 50 ms single-shot timer
hands the whole batch to ``PatchLog.extend``, which announces one removal (the oldest
rows, when full) and one insertion per batch. 2,000 events a second are 20 small model
updates a second, not 2,000. The queue itself is bounded by the log's capacity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QFontDatabase

from twin_explorer.service.patchlog import DEFAULT_CAPACITY, PatchFilter, PatchLog
from twin_explorer.service.twin_notifications import NOTIFIED_SOURCES
from twin_explorer.twin.events import Direction, PatchEvent
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.log_table import RowListenerModel

COLUMNS = ("Time (UTC)", "Identity", "Direction", "Section", "$version", "Patch")
TIME, IDENTITY, DIRECTION, SECTION, VERSION, PATCH = range(len(COLUMNS))
EventRole = Qt.ItemDataRole.UserRole + 1
DISPLAY = Qt.ItemDataRole.DisplayRole.value
FOREGROUND = Qt.ItemDataRole.ForegroundRole.value
FONT = Qt.ItemDataRole.FontRole.value
TOOLTIP = Qt.ItemDataRole.ToolTipRole.value
ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole.value
_ROLES = frozenset({DISPLAY, FOREGROUND, FONT, TOOLTIP, ALIGNMENT, int(EventRole)})
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
BATCH_MS = 50

DIRECTION_COLOURS = {  # theme roles
    Direction.SENT: "info",
    Direction.RECEIVED: "accent",
    Direction.REPORTED: "ok",
    Direction.OBSERVED: "warning",
}

Index = QModelIndex | QPersistentModelIndex


class PatchLogModel(RowListenerModel):
    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        batch_ms: int = BATCH_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.log = PatchLog(capacity, listener=self)
        self._queue: deque[PatchEvent] = deque(maxlen=capacity)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(batch_ms)
        self._timer.timeout.connect(self.flush)
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        # Told when rows, held or dropped counts moved (the status text): one listener on
        # this thread, on every batch, so a plain callback rather than a Signal.
        self.on_counts: Callable[[], None] = lambda: None

    # -- feeding -----------------------------------------------------------------------

    def push(self, event: PatchEvent) -> None:
        """Queue an event; it shows with the rest of its batch within ``batch_ms``."""
        if len(self._queue) == self._queue.maxlen:
            self.log.dropped += 1  # the oldest queued one falls out
        self._queue.append(event)
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Insert everything queued now, as one batch."""
        if self._timer.isActive():
            self._timer.stop()
        if not self._queue:
            return
        batch = list(self._queue)
        self._queue.clear()
        self.log.extend(batch)
        self.on_counts()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def capacity(self) -> int:
        return self.log.capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        self.flush()
        self.log.capacity = value
        self._queue = deque(self._queue, maxlen=value)
        self.on_counts()

    def set_filter(self, patch_filter: PatchFilter) -> None:
        self.flush()
        self.log.set_filter(patch_filter)
        self.on_counts()

    def clear(self) -> None:
        self._queue.clear()
        self._timer.stop()
        self.log.clear()
        self.on_counts()

    def pause(self) -> None:
        self.flush()
        self.log.pause()
        self.on_counts()

    def resume(self) -> None:
        self.flush()
        self.log.resume()
        self.on_counts()

    def event_at(self, row: int) -> PatchEvent:
        return self.log.event(row)

    # -- QAbstractTableModel -------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.log)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(COLUMNS)
        ):
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        # Called for every visible cell and role on each paint: the cheap refusals first.
        if role not in _ROLES or not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not 0 <= row < len(self.log):
            return None
        log_row = self.log.row(row)
        event = log_row.event
        if role == DISPLAY:
            return self._display(event, column, log_row.shown)
        if role == FOREGROUND:
            role_name = DIRECTION_COLOURS.get(event.direction) if column == DIRECTION else None
            return theme.brush(role_name) if role_name else None
        if role == FONT:
            return self._mono if column == PATCH else None
        if role == TOOLTIP:
            if column == TIME:
                return event.time
            if column == PATCH:
                return log_row.shown
            if column == IDENTITY and event.source:
                return f"{event.identity} (from {event.source})"
            return None
        if role == ALIGNMENT:
            return _RIGHT if column == VERSION else None
        return event  # EventRole

    @staticmethod
    def _display(event: PatchEvent, column: int, shown: str) -> str:
        if column == TIME:
            return event.time[11:23]  # HH:MM:SS.mmm of the ISO time
        if column == IDENTITY:
            return event.identity
        if column == DIRECTION:
            if event.source in NOTIFIED_SOURCES:  # who, as the hub's change event tells
                return f"{event.direction.value} · {event.source}"
            return event.direction.value
        if column == SECTION:
            return event.section.value
        if column == VERSION:
            return "" if event.version is None else str(event.version)
        return shown
