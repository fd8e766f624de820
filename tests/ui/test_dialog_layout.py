"""Layout of the window's dialogs as rendered: answers sit in one row, and the shortcut
list shows every row at once."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton

from tests.ui.hub_info import INFO
from tests.ui.hubwindow import open_window
from twin_explorer.ui.chrome.hub_details import LocalHubDetailsDialog
from twin_explorer.ui.chrome.shortcuts_dialog import ShortcutsDialog


def _button(dialog, text: str) -> QPushButton:
    return next(b for b in dialog.findChildren(QPushButton) if b.text().replace("&", "") == text)


def test_local_hub_details_copy_and_close_share_a_row(qtbot):
    dialog = LocalHubDetailsDialog(INFO)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    copy, close = _button(dialog, "Copy Snippet"), _button(dialog, "Close")
    assert (
        copy.mapTo(dialog, copy.rect().center()).y()
        == close.mapTo(dialog, close.rect().center()).y()
    )


def test_shortcuts_list_every_row_without_scrolling(qtbot):
    window = open_window(qtbot)
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    table = dialog.table
    qtbot.waitUntil(lambda: table.verticalScrollBar().maximum() == 0)
