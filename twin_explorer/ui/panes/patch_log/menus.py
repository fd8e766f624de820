"""The patch log's menu actions in the main window (File, Twin and View menus)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from twin_explorer.twin.identity import identity_path
from twin_explorer.ui.chrome import window_state

if TYPE_CHECKING:
    from twin_explorer.ui.main_window import MainWindow

CAPACITIES = (1_000, 10_000, 50_000, 100_000)
CAPACITY_SETTING = "patchlog/capacity"


def add_menu_actions(window: MainWindow) -> dict[str, QAction]:
    """File > Export Patch Log…, Twin > Watch/Pin/History, View > Watch Interval."""
    export = QAction("&Export Patch Log…", window)
    export.setObjectName("exportLogAction")
    export.setShortcut(QKeySequence("Ctrl+Shift+E"))
    export.triggered.connect(window.patch_log.show_export_dialog)
    file_menu = window.menus["File"]
    first = file_menu.actions()[0] if file_menu.actions() else None
    file_menu.insertAction(first, export)
    if first is not None:
        file_menu.insertSeparator(first)

    history = QAction("Twin &History…", window)
    history.setObjectName("twinHistoryAction")
    history.setShortcut(QKeySequence("Ctrl+H"))
    history.triggered.connect(lambda: window.patch_log.show_history(_selected_identity(window)))
    window.watch.add_to_menus(window.menus["Twin"], window.menus["View"], history)
    window.menus["View"].addMenu(_capacity_menu(window))
    window.patch_log.set_watch_status(window.watch.watcher.summary())
    return {"export": export, "history": history}


def _capacity_menu(window: MainWindow) -> QMenu:
    """View > Patch Log Keeps: how many rows the log holds (kept between runs)."""
    menu = QMenu("Patch Log &Keeps", window)
    menu.setObjectName("logCapacityMenu")
    group = QActionGroup(menu)
    saved = window_state.settings().value(CAPACITY_SETTING, window.patch_log.model.capacity)
    with contextlib.suppress(TypeError, ValueError):  # a hand-edited settings file
        window.patch_log.set_capacity(max(100, int(saved)))

    def choose(rows: int) -> None:
        window.patch_log.set_capacity(rows)
        store = window_state.settings()
        store.setValue(CAPACITY_SETTING, rows)
        store.sync()

    for rows in CAPACITIES:
        action = QAction(f"{rows:,} Rows", menu, checkable=True)
        action.setObjectName(f"logCapacity{rows}")
        action.setChecked(rows == window.patch_log.model.capacity)
        action.triggered.connect(lambda _on=False, rows=rows: choose(rows))
        group.addAction(action)
        menu.addAction(action)
    return menu


def _selected_identity(window: MainWindow) -> str | None:
    row = window.tree_pane.current_row()
    if row is None:
        return None
    return identity_path(row.device_id, row.module_id)
