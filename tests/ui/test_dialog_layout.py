"""Layout of the window's dialogs as rendered: widths asked for are kept, answers sit in
one row, and the shortcut list shows every row at once."""

from __future__ import annotations

import keyring
from PySide6.QtWidgets import QPushButton

from tests.connection.keyrings import RefusingKeyring
from tests.ui.hubwindow import open_window
from tests.ui.test_hub_details import INFO
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.ui.connections_dialog import EDITOR_WIDTH, ConnectionsDialog
from twin_explorer.ui.hub_details import LocalHubDetailsDialog
from twin_explorer.ui.shortcuts_dialog import ShortcutsDialog


def _button(dialog, text: str) -> QPushButton:
    return next(b for b in dialog.findChildren(QPushButton) if b.text().replace("&", "") == text)


def test_add_connection_opens_at_its_width_with_one_row_of_answers(qtbot):
    previous = keyring.get_keyring()
    keyring.set_keyring(RefusingKeyring())
    try:
        dialog = ConnectionsDialog(ProfileManager())
        qtbot.addWidget(dialog)
        dialog.show()
        editor = dialog._edit(None)
        qtbot.waitExposed(editor)
        assert editor.width() >= EDITOR_WIDTH  # the layout's minimum no longer narrows it
        editor.name_edit.setText("contoso-prod")
        editor.string_edit.setText(
            "HostName=contoso.azure-devices.net;SharedAccessKeyName=iothubowner;"
            "SharedAccessKey=" + "A" * 43 + "="
        )
        editor.save_button.click()
        qtbot.waitUntil(editor.session_only_button.isVisible)
        session_only = editor.session_only_button.geometry()
        save = editor.save_button.geometry()
        assert session_only.center().y() == save.center().y(), "not in the row of answers"
    finally:
        keyring.set_keyring(previous)


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
