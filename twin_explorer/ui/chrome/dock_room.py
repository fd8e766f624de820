"""The bottom dock area's share of the window's height: the editor is the work area.

The bottom docks (patch log, simulated modules) keep the share of the height they had
when the window is resized, so a window made small and large again gets its docks back,
and never more than ``MOST`` of it when the window is resized or a dock is shown: at
800×500 they give way to the editor. Dragging the dock's edge sets the share.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Slot
from PySide6.QtWidgets import QDockWidget, QMainWindow

MOST = 0.38  # of the height the bottom docks share with the central widget
FIRST_SHARE = 0.25  # until the docks are laid out or dragged


class DockRoom(QObject):
    def __init__(self, window: QMainWindow, docks: list[QDockWidget]) -> None:
        super().__init__(window)
        self._window = window
        self._docks = docks
        self.share = FIRST_SHARE
        self._laid_out_at = QSize()  # the window size the share was last applied at
        self._timer = QTimer(self, singleShot=True, interval=0)  # once the layout is done
        self._timer.timeout.connect(self.apply)
        window.installEventFilter(self)
        for dock in docks:
            dock.installEventFilter(self)
            dock.visibilityChanged.connect(self._dock_shown)

    def _shown(self) -> list[QDockWidget]:
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        return [
            dock
            for dock in self._docks
            if dock.isVisible()
            and not dock.isFloating()
            and self._window.dockWidgetArea(dock) == bottom
            and not dock.visibleRegion().isEmpty()  # not the one behind the other's tab
        ]

    def _heights(self) -> tuple[list[QDockWidget], int, int]:
        docks = self._shown()
        taken = max((dock.height() for dock in docks), default=0)
        return docks, taken, self._window.centralWidget().height() + taken

    @Slot()
    def apply(self) -> None:
        """Give the bottom docks their share of the height, at most ``MOST`` of it."""
        docks, taken, total = self._heights()
        self._laid_out_at = self._window.size()
        if not docks or total <= 0:
            return
        wanted = int(total * min(self.share, MOST))
        if abs(taken - wanted) > 2:
            self._window.resizeDocks([docks[0]], [wanted], Qt.Orientation.Vertical)

    @Slot(bool)
    def _dock_shown(self, shown: bool) -> None:
        if shown:
            self._timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            if watched is self._window:
                self._timer.start()
            elif self._window.size() == self._laid_out_at and watched in self._shown():
                # The dock alone changed height (its edge dragged, or a dock sized itself):
                # that is the share to keep. Docks resized with the window are not.
                _docks, taken, total = self._heights()
                if total > 0:
                    self.share = taken / total
        return False
