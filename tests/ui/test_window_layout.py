"""Window layout at small sizes, dialogs that grow with their messages, where files go."""

from __future__ import annotations

from pathlib import Path

import keyring
from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QPushButton

from tests.connection.keyrings import RefusingKeyring
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer import paths
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.twin.events import PatchStream
from twin_explorer.ui.chrome.connections_dialog import EDITOR_WIDTH, ConnectionsDialog
from twin_explorer.ui.panes.patch_log import PatchLogWidget


def test_id_column_stays_readable_at_800_by_500(qtbot, qrun):
    window = open_window(qtbot)
    window.resize(800, 500)
    window.reset_layout()
    window.open_hub()
    tree = window.tree_view

    async def scenario():
        await until(lambda: window.tree_pane.model.rowCount() > 0, 60, "the demo devices")
        await until(lambda: window.size().width() == 800)

    qrun(scenario())
    QApplication.processEvents()
    assert (window.width(), window.height()) == (800, 500)
    id_width = tree.header().sectionSize(0)
    readable = tree.fontMetrics().horizontalAdvance("thermostat-fl") + tree.indentation()
    assert id_width >= readable, f"ID column {id_width}px < {readable}px"


def test_no_keyring_message_grows_the_dialog_and_keeps_the_fields(qtbot, local_hub):
    previous = keyring.get_keyring()
    keyring.set_keyring(RefusingKeyring())
    try:
        dialog = ConnectionsDialog(ProfileManager())
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        list_text = dialog.list.item(0).text()
        assert dialog.list.viewport().width() >= dialog.list.fontMetrics().horizontalAdvance(
            list_text
        ), "the list cuts its label"

        editor = dialog._edit(None)
        qtbot.waitExposed(editor)
        assert editor.width() >= EDITOR_WIDTH  # the layout's minimum does not narrow it
        editor.name_edit.setText("contoso-prod")
        editor.string_edit.setText(local_hub.service_connection_string)
        height_before = editor.height()
        editor.save_button.click()
        qtbot.waitUntil(editor.session_only_button.isVisible)
        QApplication.processEvents()
        assert editor.height() > height_before  # the message added height
        row = editor.save_button.geometry().center().y()
        assert editor.session_only_button.geometry().center().y() == row, "beside Save"
        for edit in editor.findChildren(QLineEdit):
            if edit.isVisible():
                assert edit.height() >= edit.sizeHint().height(), edit.objectName()
        for label in editor.findChildren(QLabel):
            if label.isVisible() and label.text() and not label.wordWrap():
                need = label.fontMetrics().horizontalAdvance(label.text())
                assert label.width() >= need, f"{label.text()!r} is cut"
            if label.isVisible() and label.wordWrap() and label.text():
                assert label.height() >= label.heightForWidth(label.width()), label.text()
    finally:
        keyring.set_keyring(previous)


def test_export_opens_in_documents_then_the_last_folder(qtbot, tmp_path):
    log = PatchLogWidget(PatchStream())
    qtbot.addWidget(log)
    first = log.show_export_dialog()
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    home = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)
    expected = documents if Path(documents).is_dir() else home
    assert Path(first.directory().absolutePath()) == Path(expected)
    first.reject()

    chosen = tmp_path / "exports"
    chosen.mkdir()
    log.export(chosen / "log.jsonl")
    again = PatchLogWidget(PatchStream())  # a new window: the setting is kept
    qtbot.addWidget(again)
    second = again.show_export_dialog()
    assert Path(second.directory().absolutePath()) == chosen
    second.reject()


def test_about_shows_where_files_live_and_copies_them(qtbot):
    window = open_window(qtbot)
    dialog = window.show_about()
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.folder_labels["Data"].text() == str(paths.data_dir())
    assert dialog.folder_labels["Logs"].text() == str(paths.log_dir())
    assert dialog.folder_labels["Settings"].text() == str(paths.config_dir())
    dialog.findChild(QPushButton, "copyLogsFolder").click()
    assert QGuiApplication.clipboard().text() == str(paths.log_dir())
    assert "Copied" in dialog.findChild(QLabel, "aboutCopied").text()
