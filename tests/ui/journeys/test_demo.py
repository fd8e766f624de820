"""Demoing a module: simulate it, change its desired properties, call its methods (answered
by a rule, and by hand from the panel while the method dialog stays open or after it was
closed), and send telemetry; everything seen in the window."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt

from tests.ui.conftest import until

MODULE = "myFirstDevice/myFirstModule"


def test_demo_a_simulated_module(person, qrun, caplog):
    caplog.set_level(logging.WARNING)
    tree = person.window.tree_view

    def log_row(start: str, end: str = "") -> bool:
        return any(t.startswith(start) and t.endswith(end) for t in person.texts())

    async def in_the_log(start: str, end: str, within: float, what: str) -> None:
        """Bring the Patch Log tab forward, wait for the row, go back to the modules."""
        person.tab("Patch Log")
        await until(lambda: log_row(start, end), within, what)
        person.tab("Simulated Modules")

    async def invoke(dialog, method: str) -> None:
        person.type_into("Method name", method)
        person.click("Invoke", within=dialog)
        await until(lambda: person.sees("Waiting for the answer", within=dialog), 5, "the call")

    async def journey():
        person.click_row(tree, "myFirstDevice")
        person.press(Qt.Key.Key_Right, to=tree)
        await person.wait_to_see("myFirstModule")
        person.click_row(tree, "myFirstModule")
        await person.wait_to_see('"deviceId": "myFirstDevice"')

        # Simulate it: the panel says it is connected.
        person.menu("Module", "Simulate")
        await until(lambda: _found(person.pane, "Simulated Modules"), 15, "the simulator pane")
        sims = person.pane("Simulated Modules")
        await until(lambda: person.sees("Connected", within=sims), 30, "the module connected")
        assert person.sees(MODULE, within=sims)
        # The tree's Connection column says so too.
        module_row = person.row(tree, "myFirstModule")
        await until(
            lambda: module_row.siblingAtColumn(2).data() == "Connected",
            2,
            "the tree to show the module connected",
        )

        # A desired change saved in the twin editor comes back as the module's echo, and
        # the panel's header follows the desired $version (1 in the demo data, then 2).
        def header() -> str:  # the line beside the module's name
            return next(t for t in person.texts(sims) if t.startswith("Connected"))

        assert "desired $version 1" in header()
        person.type_into("Editable", '{"tags": {}, "properties": {"desired": {"color": "blue"}}}')
        await person.wait_to_see("unsaved changes")
        person.press("Ctrl+S")
        await until(
            lambda: person.sees('(echo) sent  {"color":"blue"}', within=sims), 20, "the echo"
        )
        await until(lambda: header().startswith("Connected · desired $version 2"), 10, "header")

        # A method answered by a rule set in the panel.
        person.tab("Methods", within=sims)
        person.type_into("method name", "reboot")
        person.type_into("answer payload", '{"ok": true}')
        person.click("Set", within=sims)
        await person.wait_to_see('reboot: 200 {"ok":true}')

        person.press("Ctrl+M")
        await until(lambda: _found(person.window_titled, "Direct Method"), 5, "the method dialog")
        dialog = person.window_titled("Direct Method")
        assert MODULE in dialog.windowTitle()
        await invoke(dialog, "reboot")
        await until(lambda: person.sees("Status 200", within=dialog), 15, "the rule's answer")
        assert person.sees('"ok": true', within=dialog)
        # The call in the patch log: the app's side (sent) and the module's (rule).
        await in_the_log('reboot({}) → 200 {"ok":true}', "· module", 5, "sent")
        await in_the_log('reboot({}) → 200 {"ok":true}', "· rule", 5, "received")

        # "Ask me": answered from the panel while the dialog stays open.
        person.type_into("method name", "confirm")
        person.choose("Answer", "Ask me")
        person.click("Set", within=sims)
        await person.wait_to_see("confirm: ask me")
        await invoke(dialog, "confirm")
        await until(lambda: person.sees("answer within", within=sims), 15, "the prompt")
        person.type_into("Payload", '{"confirmed": true}')
        person.click("Answer", within=sims)
        await until(lambda: person.sees('"confirmed": true', within=dialog), 15, "the answer")
        assert person.sees("Status 200", within=dialog)

        # Closed mid-call: the answer still reaches the caller, and the patch log says so.
        await invoke(dialog, "confirm")
        await until(lambda: person.sees("answer within", within=sims), 15, "the prompt")
        person.click("Close", within=dialog)
        await until(lambda: not _found(person.window_titled, "Direct Method"), 5, "closed")
        person.type_into("Payload", '{"late": true}')
        person.click("Answer", within=sims)
        # Both sides of the call, in whichever order they land.
        await in_the_log('confirm({}) → 200 {"late":true}', "· module", 15, "sent")
        late = 'confirm({}) → 200 {"late":true}'
        await in_the_log(late, "· asked: answered by you", 5, "received")

        # Telemetry: each message sent is listed with its content type.
        person.tab("Telemetry", within=sims)
        person.click("Send One", within=sims)
        await until(lambda: person.sees('"count": 1', within=sims), 15, "the message listed")
        assert person.sees("application/json; utf-8", within=sims)
        assert person.sees("Sent 1, failed 0", within=sims)

    qrun(journey(), timeout=150)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _found(find, title: str) -> bool:
    try:
        find(title)
    except AssertionError:
        return False
    return True
