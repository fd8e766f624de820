"""Desired versus reported, one row per desired value (a model: thousands of rows are
cheap, since cells are only made for what is on screen)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.edit_status import DesiredStatus, SyncState, summary
from twin_explorer.ui.common import theme

Index = QModelIndex | QPersistentModelIndex
COLUMNS = (
    "Property",
    "Desired",
    "Reported",
    "Status",
    "Desired updated",
    "Desired version",
    "Reported updated",
    "Reported $version",
)
STATUS_COLUMN = 3
STATE_BACKGROUNDS = {  # theme roles
    SyncState.MATCHING: "ok_bg",
    SyncState.PENDING: "warning_bg",
    SyncState.NEVER: "neutral_bg",
}


def _shown(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def cells(row: DesiredStatus) -> tuple[str, ...]:
    return (
        row.label,
        _shown(row.desired),
        _shown(row.reported) if row.state is not SyncState.NEVER else "—",
        row.state.value,
        row.desired_updated or "",
        _number(row.desired_version),
        row.reported_updated or "",
        _number(row.reported_version),
    )


class StatusModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[DesiredStatus] = []

    def set_rows(self, rows: list[DesiredStatus]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cells(row)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.note or cells(row)[index.column()]
        if index.column() == STATUS_COLUMN:
            if role == Qt.ItemDataRole.BackgroundRole:
                return theme.brush(STATE_BACKGROUNDS[row.state])
            if role == Qt.ItemDataRole.ForegroundRole:
                return theme.brush("text")
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None


class DesiredReportedView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("")
        self.summary.setObjectName("syncSummary")
        self.summary.setWordWrap(True)
        self.model = StatusModel(self)
        self.table = QTableView()
        self.table.setObjectName("desiredReportedTable")
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    @property
    def rows(self) -> list[DesiredStatus]:
        return self.model.rows

    def show_statuses(self, rows: list[DesiredStatus]) -> None:
        fresh = not self.model.rows
        self.model.set_rows(rows)
        if fresh and rows:
            self.table.resizeColumnsToContents()  # sampled by Qt: cheap for long tables
        counts = summary(rows)
        if not rows:
            self.summary.setText("No desired properties.")
        else:
            self.summary.setText(" · ".join(f"{n} {state.value}" for state, n in counts.items()))

    def state_of(self, label: str) -> SyncState | None:
        return next((row.state for row in self.rows if row.label == label), None)
