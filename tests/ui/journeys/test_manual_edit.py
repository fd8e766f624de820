"""Manual twin edits: a person edits a module's desired properties by typing, meets a
conflict with someone else's change and merges; and types invalid JSON and is told where."""

from __future__ import annotations

import asyncio

from azure.iot.hub.models import Twin, TwinProperties
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from tests.hubfixtures import trusting_registry_manager
from tests.ui.conftest import until

SAVE = QKeySequence.StandardKey.Save


async def _open_my_first_module(person) -> None:
    tree = person.window.tree_view
    person.click_row(tree, "myFirstDevice")
    person.press(Qt.Key.Key_Right, to=tree)  # expand, as with the keyboard
    await person.wait_to_see("myFirstModule")
    person.click_row(tree, "myFirstModule")
    await person.wait_to_see("desired $version")


def _someone_else(window):
    """Another client of the same hub: the service SDK, unmodified (not the window)."""
    info = window.session.local_info
    return trusting_registry_manager(info.service_connection_string, info.ca_cert)


def test_manual_twin_edit_with_a_conflict(person, qrun):
    window = person.window

    async def journey():
        await _open_my_first_module(person)
        person.type_into(
            "Tags and desired properties",
            '{"tags": {}, "properties": {"desired": {"mode": "eco"}}}',
        )
        assert person.sees("●")  # unsaved

        # Meanwhile someone else changes the same twin.
        registry = _someone_else(window)
        theirs = Twin(properties=TwinProperties(desired={"telemetryInterval": 10}))
        await asyncio.to_thread(
            registry.update_module_twin, "myFirstDevice", "myFirstModule", theirs, "*"
        )

        person.press(SAVE)
        await person.wait_to_see("Someone else changed this twin")
        assert person.sees('"telemetryInterval": 10')  # their change
        assert person.sees('"mode": "eco"')  # and mine

        person.click("Merge")
        await person.wait_to_see("Merged: the hub's twin with your change on top")
        person.press(SAVE, to=window.editor.text_view)
        await person.wait_to_see("Saved the twin of myFirstDevice/myFirstModule")

        twin = await asyncio.to_thread(registry.get_module_twin, "myFirstDevice", "myFirstModule")
        desired = twin.properties.desired
        assert desired["mode"] == "eco" and desired["telemetryInterval"] == 10  # both
        assert person.sees(f"desired $version {desired['$version']}")  # the new version
        assert not person.button("Save Twin").isEnabled()  # nothing left to save

    qrun(journey())


def test_invalid_json_is_shown_at_its_line_and_not_saved(person, qrun):
    window = person.window

    async def journey():
        await _open_my_first_module(person)
        typed = '{"tags": {},\n "properties": {"desired": {"mode": eco}}}'
        field = person.type_into("Tags and desired properties", typed)
        person.press(SAVE)  # at once, before the check that runs when typing pauses
        await person.wait_to_see("Not saved: line 2")
        await person.wait_to_see("Line 2, column")  # the problem list, at its line
        assert field.toPlainText() == typed  # the text stays
        assert not person.button("Save Twin").isEnabled()
        registry = _someone_else(window)
        twin = await asyncio.to_thread(registry.get_module_twin, "myFirstDevice", "myFirstModule")
        assert "mode" not in twin.properties.desired  # nothing was sent
        person.menu("Twin", "Discard Changes")  # the person gives up on it, on purpose
        await until(lambda: field.toPlainText() != typed, what="the loaded twin again")

    qrun(journey())
