"""The live patch log, twin watching and twin history (DESIGN "Data flow" 3: Watch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence

from twin_explorer.ui.patch_log.model import PatchLogModel
from twin_explorer.ui.patch_log.watching import WatchController
from twin_explorer.ui.patch_log.widget import PatchLogWidget

if TYPE_CHECKING:
    from twin_explorer.ui.main_window import MainWindow

__all__ = ["PatchLogModel", "PatchLogWidget", "WatchController", "add_menu_actions"]


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
    return {"export": export, "history": history}


def _selected_identity(window: MainWindow) -> str | None:
    row = window.tree_pane.current_row()
    if row is None:
        return None
    return f"{row.device_id}/{row.module_id}" if row.module_id else row.device_id
