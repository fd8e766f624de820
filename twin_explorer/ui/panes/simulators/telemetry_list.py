"""The messages a simulated module sent: a bounded table, newest first.

A stream may run for hours: the model keeps the newest ``LIST_LIMIT`` messages and lets
the oldest go, one row in and (when full) one row out per message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from twin_explorer.simulator import ModuleEvent
from twin_explorer.ui.panes.simulators.common import LIST_LIMIT, clock, compact, mono

COLUMNS = ("Time (UTC)", "Result", "Body", "Properties", "Content type")
TIME, RESULT, BODY, PROPERTIES, CONTENT = range(len(COLUMNS))
Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class SentMessage:
    time: str
    body: str
    properties: dict[str, str]
    content_type: str
    content_encoding: str
    failure: str | None = None  # why it was not sent

    @classmethod
    def from_event(cls, event: ModuleEvent) -> SentMessage:
        data = event.data
        return cls(
            event.time,
            data.get("body", ""),
            dict(data.get("properties") or {}),
            data.get("content_type", ""),
            data.get("content_encoding", ""),
            data.get("reason") if event.name == "telemetry_failed" else None,
        )

    def cell(self, column: int) -> str:
        if column == TIME:
            return clock(self.time)
        if column == RESULT:
            return "sent" if self.failure is None else "failed"
        if column == BODY:
            return self.body
        if column == PROPERTIES:
            return compact(self.properties) if self.properties else ""
        return f"{self.content_type}; {self.content_encoding}"


class MessageListModel(QAbstractTableModel):
    def __init__(self, limit: int = LIST_LIMIT, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: deque[SentMessage] = deque()
        self.limit = limit
        self._mono = mono()

    def add(self, message: SentMessage) -> None:
        if len(self._rows) >= self.limit:
            last = len(self._rows) - 1
            self.beginRemoveRows(QModelIndex(), last, last)
            self._rows.pop()
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.appendleft(message)
        self.endInsertRows()

    def message(self, row: int) -> SentMessage:
        return self._rows[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        message = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return message.cell(column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == RESULT and message.failure:
                return message.failure
            if column == TIME:
                return message.time
            return message.cell(column)
        if role == Qt.ItemDataRole.FontRole and column in (BODY, PROPERTIES):
            return self._mono
        return None


def message_table(model: MessageListModel, parent: QWidget | None = None) -> QTableView:
    view = QTableView(parent)
    view.setObjectName("simTelemetryMessages")
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setWordWrap(False)
    view.verticalHeader().hide()
    rows = view.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + 6)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    header.setSectionResizeMode(BODY, QHeaderView.ResizeMode.Stretch)
    # Short, fixed-width facts: as wide as their text, so the body gets the rest and
    # "application/json; utf-8" is never cut.
    for column in (TIME, RESULT, CONTENT):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    view.setToolTip("Each message this module sent, newest first (the last 1,000 are kept)")
    return view
