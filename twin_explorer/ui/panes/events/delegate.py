"""How the Events list paints a cell: from the record, in one call.

Qt's own delegate asks the model for each role of each visible cell (six or seven
``data()`` calls, each a trip from C++ into Python) on every repaint, twenty times a
second while events pour in; this one fills the style option itself and leaves the
drawing (selection, elision, alternating rows) to the style."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from twin_explorer.ui.panes.events.model import SOURCE, EventsModel, cell_text

_HAS_DISPLAY = QStyleOptionViewItem.ViewItemFeature.HasDisplay


class EventCellDelegate(QStyledItemDelegate):
    def __init__(self, model: EventsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        record = self.model.record_of(index)
        if record is None:
            return
        column = index.column()
        if column == SOURCE:
            palette = option.palette  # type: ignore[attr-defined]
            palette.setBrush(QPalette.ColorRole.Text, self.model.brushes[record.source])
            option.palette = palette  # type: ignore[attr-defined]
        option.text = cell_text(record, column)  # type: ignore[attr-defined]
        option.features |= _HAS_DISPLAY  # type: ignore[attr-defined]
        option.index = index  # type: ignore[attr-defined]
