"""The window's tools as a person meets them: the patch log's controls, the simulator
tab beside it, the local hub's details, and the list of shortcuts."""

from __future__ import annotations

import asyncio
import os
import sys

from PySide6.QtCore import QDir
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QPlainTextEdit, QTableWidget

from tests.ui.conftest import until
from twin_explorer.ui.shortcuts_dialog import plain


def _dialog(title: str):
    shown = QApplication.topLevelWidgets()
    return next(w for w in shown if w.isVisible() and w.windowTitle() == title)


def test_patch_log_controls_are_in_the_window(person, qrun):
    tree = person.window.tree_view

    async def journey():
        person.click_row(tree, "myFirstDevice")
        await person.wait_to_see("Watching myFirstDevice")  # watch status, in the log's footer
        identity = person.field("Identity")  # the filter bar
        assert person.field("Search patches")
        for direction in ("Sent", "Received", "Observed"):
            assert person.button(direction).isCheckable()
        person.type_into("Identity", "myFirst")
        assert identity.text() == "myFirst"
        person.click("Sent")
        assert person.button("Sent").isChecked()
        person.click("Sent")
        person.click("Pause")
        await person.wait_to_see("Resume")
        await person.wait_to_see("paused")
        person.click("Resume")
        person.click("Clear")
        await person.wait_to_see("0 rows")
        person.click("Export")
        dialog = _dialog("Export Patch Log")
        assert isinstance(dialog, QFileDialog)
        assert QDir(dialog.directory().absolutePath()) != QDir(os.getcwd())
        dialog.reject()

    qrun(journey())


def test_simulated_modules_open_beside_the_log_and_leave_the_editor_room(person, qrun):
    window = person.window
    window.resize(1400, 900)
    tree = window.tree_view

    async def journey():
        await until(lambda: window.size().width() == 1400)
        person.click_row(tree, "myFirstDevice")
        person.press("Right", to=tree)
        await person.wait_to_see("myFirstModule")
        person.click_row(tree, "myFirstModule")
        await person.wait_to_see('"moduleId": "myFirstModule"')
        person.click("Simulate")  # the toolbar
        await person.wait_to_see("Connected")
        editor = window.findChild(QPlainTextEdit, "twinEditorText")
        lines = editor.viewport().height() / editor.fontMetrics().lineSpacing()
        assert lines >= 10, f"the editor shows {lines:.1f} lines with the simulator open"
        assert (window.width(), window.height()) == (1400, 900)  # never grew by itself
        person.tab("Patch Log")  # the log is the simulator's neighbour tab
        assert person.button("Pause")

    qrun(journey())


def test_local_hub_details_copy_a_snippet_that_works(person, qrun):
    async def journey():
        person.menu("Hub", "Local Hub Details")
        details = _dialog("Local Hub Details")
        key = person.window.session.local_info.service_connection_string.split("Key=")[1]
        assert not person.sees(key)  # masked until asked
        person.click("Show", within=details)
        assert person.sees(key)
        person.tab("Environment", within=details)
        person.click("Copy Snippet", within=details)
        environment = QGuiApplication.clipboard().text()
        person.tab("Python service", within=details)
        person.click("Copy Snippet", within=details)
        await person.wait_to_see("Copied the Python service snippet")
        script = QGuiApplication.clipboard().text()
        # Pasted into a shell, as the dialog means them to be.
        shell = f"{environment}\n{sys.executable} - <<'PY'\n{script}\nPY\n"
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            shell,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
        assert "myFirstDevice" in out.decode()

    qrun(journey(), timeout=90)


def test_help_lists_every_shortcut(person, qrun):
    window = person.window
    person.menu("Help", "Keyboard Shortcuts")
    table = _dialog("Keyboard Shortcuts").findChild(QTableWidget)
    listed = {table.item(r, 0).text() for r in range(table.rowCount())}
    with_keys = {plain(a.text()) for a in window.findChildren(QAction) if a.shortcuts()}
    assert with_keys and with_keys <= listed
    assert person.sees("Ctrl+S") and person.sees("Save Twin")


def test_menu_actions_have_mnemonics_and_shortcut_tooltips(person):
    for menu in person.window.menus.values():
        for action in menu.actions():
            if action.isSeparator():
                continue
            assert "&" in action.text(), f"{action.text()!r} has no mnemonic"
            if action.shortcuts():
                assert action.shortcut().toString() in action.toolTip(), action.toolTip()
