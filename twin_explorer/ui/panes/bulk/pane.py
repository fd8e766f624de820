"""The bulk change pane: its action (Twin > Change Many Twins…, also in the tree's
context menu) and the one window it opens, following the hub like every pane."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from twin_explorer.service.bulk.choose import Ids
from twin_explorer.twin.events import PatchEvent
from twin_explorer.ui.chrome.pane_action import PaneAction
from twin_explorer.ui.panes.bulk.dialog import BulkChangeDialog


class BulkPane(QObject):
    def __init__(
        self,
        window: QWidget,
        selected: Callable[[], list[Ids]],
        publish: Callable[[PatchEvent], None] | None = None,
        *,
        runs_root: Path | None = None,
    ) -> None:
        super().__init__(window)
        self._window, self._selected, self._publish = window, selected, publish
        self._runs_root = runs_root
        self._service: Any = None
        self.dialog: BulkChangeDialog | None = None
        self.action = QAction("Change &Many Twins…", self)
        self.action.setObjectName("bulkChangeAction")
        self.action.setShortcut(QKeySequence("Ctrl+Shift+M"))
        self.action.setToolTip(
            "Write one change to many twins (the selected ones, or a query's), with a "
            "preview per twin before anything is sent"
        )
        self.action.triggered.connect(self.open)
        self.action.setEnabled(False)

    def pane_actions(self) -> list[PaneAction]:
        return [PaneAction("Twin", self.action, separator_before=True)]

    def set_service(self, service: Any) -> None:
        self._service = service
        self.action.setEnabled(service is not None)
        if self.dialog is not None:
            self.dialog.hub_changed()

    def open(self) -> BulkChangeDialog:
        if self.dialog is None:
            self.dialog = BulkChangeDialog(
                lambda: self._service, self._publish, self._window, runs_root=self._runs_root
            )
        if not self.dialog.applying:
            self.dialog.set_selected(self._selected())
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    async def aclose(self) -> None:
        if self.dialog is not None:
            await self.dialog.aclose()
