"""Column widths that stay readable when a view is narrow."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QHeaderView, QTreeView


class ReadableFirstColumn(QObject):
    """Column 0 takes the width the other columns leave, but never less than ``chars``
    characters: a narrow view scrolls sideways instead of squeezing names to nothing."""

    def __init__(self, view: QTreeView, chars: int = 16) -> None:
        super().__init__(view)
        self._view = view
        self.minimum = view.fontMetrics().averageCharWidth() * chars + view.indentation()
        header = view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # ids differ at their ends
        view.viewport().installEventFilter(self)
        header.sectionResized.connect(self._other_resized)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False

    def _other_resized(self, column: int, _old: int, _new: int) -> None:
        if column != 0:
            self.fit()

    def fit(self) -> None:
        header = self._view.header()
        others = sum(header.sectionSize(c) for c in range(1, header.count()))
        header.resizeSection(0, max(self.minimum, self._view.viewport().width() - others))
