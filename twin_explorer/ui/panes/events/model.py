"""A thin Qt table model over the Qt-free ``EventLog``: the log announces one removal and
one insertion per batch (the stream batches arrivals), so the view repaints per batch."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush

from twin_explorer.service.events.log import EventLog
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.log_table import RowListenerModel

COLUMNS = ("Time (UTC)", "Source", "Identity", "Summary")
TIME, SOURCE, IDENTITY, SUMMARY = range(len(COLUMNS))
RecordRole = Qt.ItemDataRole.UserRole + 1
DISPLAY = Qt.ItemDataRole.DisplayRole.value
FOREGROUND = Qt.ItemDataRole.ForegroundRole.value
TOOLTIP = Qt.ItemDataRole.ToolTipRole.value
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

SOURCE_NAMES = {
    Source.TELEMETRY: "Telemetry",
    Source.TWIN: "Twin change",
    Source.LIFECYCLE: "Lifecycle",
    Source.CONNECTION: "Connection",
}
SOURCE_COLOURS = {  # theme roles
    Source.TELEMETRY: "accent",
    Source.TWIN: "info",
    Source.LIFECYCLE: "warning",
    Source.CONNECTION: "ok",
}

Index = QModelIndex | QPersistentModelIndex


class EventsModel(RowListenerModel):
    def __init__(self, log: EventLog, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log = log
        log.listener = self
        self.brushes: dict[Source, QBrush] = {}  # the source column's, in this theme
        self._recolour()
        theme.on_change(self, self._recolour)

    def record_at(self, row: int) -> EventRecord:
        return self.log.record(row)

    # -- QAbstractTableModel -------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.log)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == DISPLAY and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        # Called for every visible cell and role on each repaint (twenty times a second
        # while events pour in): the roles not served answer before anything is looked up.
        if role == DISPLAY:
            record = self.record_of(index)
            return None if record is None else cell_text(record, index.column())
        if role == FOREGROUND:
            if index.column() != SOURCE:
                return None
            record = self.record_of(index)
            return None if record is None else self.brushes[record.source]
        if role == TOOLTIP:
            if index.column() != TIME:
                return None
            record = self.record_of(index)
            return None if record is None else record.time.isoformat()
        if role == RecordRole:
            return self.record_of(index)
        return None

    def record_of(self, index: Index) -> EventRecord | None:
        row = index.row()
        if not index.isValid() or not 0 <= row < len(self.log):
            return None
        return self.log.record(row)

    def _recolour(self) -> None:
        self.brushes = {source: theme.brush(role) for source, role in SOURCE_COLOURS.items()}


def cell_text(record: EventRecord, column: int) -> str:
    if column == SUMMARY:
        return record.summary  # decoded on first paint, only for rows people see
    if column == TIME:
        return record.clock
    if column == SOURCE:
        return SOURCE_NAMES[record.source]
    return record.identity
