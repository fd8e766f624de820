"""A thin Qt table model over the Qt-free ``EventLog``: the log announces one removal and
one insertion per batch (the stream batches arrivals), so the view repaints per batch."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt

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
        if not index.isValid() or not 0 <= index.row() < len(self.log):
            return None
        record = self.log.record(index.row())
        column = index.column()
        if role == DISPLAY:
            if column == TIME:
                return record.time.strftime("%H:%M:%S.%f")[:-3]
            if column == SOURCE:
                return SOURCE_NAMES[record.source]
            if column == IDENTITY:
                return record.identity
            return record.summary  # decoded on first paint, only for rows people see
        if role == FOREGROUND and column == SOURCE:
            return theme.brush(SOURCE_COLOURS[record.source])
        if role == TOOLTIP and column == TIME:
            return record.time.isoformat()
        if role == RecordRole:
            return record
        return None
