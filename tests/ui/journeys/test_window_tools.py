"""The window's tools as a person meets them: the patch log's controls, the simulator
tab beside it, the local hub's details, and the list of shortcuts."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QDir
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QPlainTextEdit, QTableWidget

from tests.node.harness import NODE_DIR, node_or_skip
from tests.ui.conftest import until
from twin_explorer.ui.chrome.shortcuts_dialog import plain


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


async def _run_pasted(environment: str, program: str, script: str, **env: str) -> str:
    """Pasted into a shell, as the dialog means them to be: its output (it must succeed)."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    shell = f"{environment}\n{exports}{program} - <<'CODE'\n{script}\nCODE\n"
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", shell, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


def _copy_snippet(person, details, title: str) -> str:
    person.tab(title, within=details)
    person.click("Copy Snippet", within=details)
    return QGuiApplication.clipboard().text()


async def _copy_module_string(person) -> str:
    """Module → Copy Primary Connection String… for myFirstModule, then Copy."""
    tree = person.window.tree_view
    person.click_row(tree, "myFirstDevice")
    person.press("Right", to=tree)
    await person.wait_to_see("myFirstModule")
    person.click_row(tree, "myFirstModule")
    person.menu("Module", "Copy Primary Connection String…")
    await until(lambda: _shown("Connection String — myFirstDevice/myFirstModule (primary)"))
    dialog = _dialog("Connection String — myFirstDevice/myFirstModule (primary)")
    person.click("Copy", within=dialog)
    person.click("Close", within=dialog)
    return QGuiApplication.clipboard().text()


def _shown(title: str) -> bool:
    return any(w.isVisible() and w.windowTitle() == title for w in QApplication.topLevelWidgets())


def test_local_hub_details_copy_a_snippet_that_works(person, qrun):
    async def journey():
        person.menu("Hub", "Local Hub Details")
        details = _dialog("Local Hub Details")
        key = person.window.session.local_info.service_connection_string.split("Key=")[1]
        assert not person.sees(key)  # masked until asked
        person.click("Show", within=details)
        assert person.sees(key)
        environment = _copy_snippet(person, details, "Environment")
        script = _copy_snippet(person, details, "Python service")
        await person.wait_to_see("Copied the Python service snippet")
        out = await _run_pasted(environment, sys.executable, script)
        assert "myFirstDevice" in out

    qrun(journey(), timeout=90)


@pytest.fixture
def device_port_taken():
    """Port 8883 held here, so the hub listens for MQTT on another port. When another
    program holds it, it is taken just as well (a hub of its own may be closing: wait)."""
    holder = socket.socket()
    # As the hub binds (asyncio servers reuse the address): connections an earlier test's
    # hub had on 8883 linger in TIME_WAIT for a minute and would refuse a plain bind, and
    # the hub, binding past them, would then get 8883 after all.
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 10
    while True:
        try:
            holder.bind(("127.0.0.1", 8883))
            holder.listen()
            break
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    yield
    holder.close()


def test_local_hub_device_snippets_connect_as_a_module(device_port_taken, person, qrun):
    """The Python and Node.js device snippets, run as pasted with a module's own string,
    reach the hub when 8883 is taken, read the twin and report."""
    assert person.window.session.local_info.mqtt_port != 8883
    node = node_or_skip()
    node_dir = str(Path(node).parent)

    async def journey():
        module_string = await _copy_module_string(person)
        person.menu("Hub", "Local Hub Details")
        details = _dialog("Local Hub Details")
        environment = _copy_snippet(person, details, "Environment")
        python_device = _copy_snippet(person, details, "Python device")
        nodejs = _copy_snippet(person, details, "Node.js")
        runs = (
            (sys.executable, python_device, {}, "from a script"),
            ("node", nodejs, {"NODE_PATH": str(NODE_DIR / "node_modules")}, "from Node.js"),
        )
        for program, script, extra, hello in runs:
            out = await _run_pasted(
                environment,
                program,
                script,
                IOTHUB_MODULE_CONNECTION_STRING=module_string,
                PATH=f"{node_dir}:{os.environ['PATH']}",
                **extra,
            )
            assert "$version" in out, f"{program} printed {out!r}"
            # Its report reached the hub: the module's twin, read again, shows it.
            person.click("Reload Twin", within=person.window)
            await person.wait_to_see(f'"hello": "{hello}"')

    qrun(journey(), timeout=120)


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
