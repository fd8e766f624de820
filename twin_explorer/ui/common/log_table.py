"""What the patch log and the Events pane share: a table model told of row changes by a
Qt-free log (``RowListener``: one removal and one insertion per batch), and the table
view over it (rows of one fixed height, never measured)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget


class RowListenerModel(QAbstractTableModel):
    """A table model whose log tells it before and after each change, like Qt's own
    begin/end pairs."""

    def rows_about_to_be_removed(self, first: int, last: int) -> None:
        self.beginRemoveRows(QModelIndex(), first, last)

    def rows_removed(self) -> None:
        self.endRemoveRows()

    def rows_about_to_be_inserted(self, first: int, last: int) -> None:
        self.beginInsertRows(QModelIndex(), first, last)

    def rows_inserted(self) -> None:
        self.endInsertRows()

    def about_to_reset(self) -> None:
        self.beginResetModel()

    def reset(self) -> None:
        self.endResetModel()


def log_view(name: str, model: QAbstractTableModel, owner: QWidget) -> QTableView:
    """A read-only table of whole rows, one chosen at a time, rows of one fixed height."""
    view = QTableView()
    view.setObjectName(name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setWordWrap(False)
    view.setShowGrid(False)
    view.setAlternatingRowColors(True)
    rows = view.verticalHeader()
    rows.hide()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # never measure rows
    rows.setDefaultSectionSize(owner.fontMetrics().height() + 6)
    columns = view.horizontalHeader()
    columns.setStretchLastSection(True)
    columns.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    return view
