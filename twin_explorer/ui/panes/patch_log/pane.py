"""The patch log pane built whole from its part of the app model (the patch stream, the
twin history, the watcher and the selection): the log itself (the dock's body), twin
watching, and its menu entries (File, Twin and View menus)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from twin_explorer.service.app_model import Selection
from twin_explorer.service.history import TwinHistory
from twin_explorer.service.settings import LOG_CAPACITY
from twin_explorer.service.watch import TwinWatcher
from twin_explorer.twin.events import PatchStream
from twin_explorer.ui.chrome.pane_action import PaneAction
from twin_explorer.ui.chrome.settings import settings
from twin_explorer.ui.panes.patch_log.watching import WatchController
from twin_explorer.ui.panes.patch_log.widget import PatchLogWidget

CAPACITIES = (1_000, 10_000, 50_000, 100_000)


class PatchLogPane(QObject):
    """``widget``: the log people see; ``watch``: its watching actions and status;
    ``actions``: Export and Twin History by name; ``pane_actions()`` for the menus."""

    def __init__(
        self,
        patches: PatchStream,
        history: TwinHistory,
        watcher: TwinWatcher,
        selection: Selection,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.selection = selection
        self.widget = PatchLogWidget(patches, history)
        self.watch = WatchController(watcher, selection, parent=self)
        self.watch.statusChanged.connect(self.widget.set_watch_status)
        self.widget.service = lambda: self.watch.service
        self.widget.set_watch_status(watcher.summary())

        export = QAction("&Export Patch Log…", self)
        export.setObjectName("exportLogAction")
        export.setShortcut(QKeySequence("Ctrl+Shift+E"))
        export.triggered.connect(self.widget.show_export_dialog)
        history_action = QAction("Twin &History…", self)
        history_action.setObjectName("twinHistoryAction")
        history_action.setShortcut(QKeySequence("Ctrl+H"))
        history_action.triggered.connect(lambda: self.widget.show_history(selection.identity))
        self.actions = {"export": export, "history": history_action}
        self.capacity_menu = self._capacity_menu()

    def pane_actions(self) -> list[PaneAction]:
        """File: Export; Twin: watching and history; View: watch interval and how many
        rows the log keeps."""
        watch = self.watch
        twin = [watch.watch_selected, watch.pin, watch.unpin_all, self.actions["history"]]
        return [
            PaneAction("File", self.actions["export"]),
            *(PaneAction("Twin", act, separator_before=act is twin[0]) for act in twin),
            PaneAction("View", watch.interval_menu, separator_before=True),
            PaneAction("View", self.capacity_menu),
        ]

    def _capacity_menu(self) -> QMenu:
        """View > Patch Log Keeps: how many rows the log holds (kept between runs)."""
        log = self.widget
        menu = QMenu("Patch Log &Keeps", log)
        menu.setObjectName("logCapacityMenu")
        group = QActionGroup(menu)
        log.set_capacity(settings().get(LOG_CAPACITY))

        def choose(rows: int) -> None:
            log.set_capacity(rows)
            settings().set(LOG_CAPACITY, rows)

        for rows in CAPACITIES:
            action = QAction(f"{rows:,} Rows", menu, checkable=True)
            action.setObjectName(f"logCapacity{rows}")
            action.setChecked(rows == log.model.capacity)
            action.triggered.connect(lambda _on=False, rows=rows: choose(rows))
            group.addAction(action)
            menu.addAction(action)
        return menu

    async def aclose(self) -> None:
        await self.watch.aclose()
