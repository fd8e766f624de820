"""Watch — history and diff: a person changes a twin twice and compares two versions."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPlainTextEdit

from tests.ui.conftest import until


def _edit_twin(person, text: str) -> None:
    """Replace the editable twin text by typing, as a person would."""
    editor = person.window.findChild(QPlainTextEdit, "twinEditorText")
    person.click_widget(editor.viewport())
    person.press(QKeySequence.StandardKey.SelectAll, to=editor)
    person.press(Qt.Key.Key_Delete, to=editor)
    QTest.keyClicks(editor, text)


async def _save_interval(person, interval: int) -> None:
    """Type a desired ``interval`` into the editor and save it with the keyboard."""
    _edit_twin(person, f'{{"tags": {{}}, "properties": {{"desired": {{"interval": {interval}}}}}}}')
    await person.wait_to_see("unsaved changes")  # validated: the editor has the edit
    person.press(QKeySequence.StandardKey.Save)
    await until(lambda: not person.sees("unsaved changes"), 15, "the save to finish")


def _diff_shows(person, sign: str, text: str) -> bool:
    """A diff line that starts with ``sign`` ('+' added, '-' removed) and holds ``text``."""
    return any(
        line.startswith(sign) and not line.startswith(sign * 3) and text in line
        for shown in person.texts()
        for line in shown.splitlines()
    )


async def _compare_the_saves(person) -> None:
    """Versions #1 → #2 show the first save (interval 11), #2 → #3 the second (22)."""
    person.choose("From", "#1")
    person.choose("To", "#2")
    await until(lambda: _diff_shows(person, "+", '"interval": 11'), 15, "the first change")
    person.choose("From", "#2")
    person.choose("To", "#3")
    await until(lambda: _diff_shows(person, "+", '"interval": 22'), 15, "the second change")


def test_watch_history_and_diff(person, qrun):
    tree = person.window.tree_view

    async def journey():
        person.click_row(tree, "myFirstDevice")
        await person.wait_to_see("Watching myFirstDevice")  # the patch log's watch status
        await person.wait_to_see('"deviceId": "myFirstDevice"')

        # The history beside the editor: it counts the versions as the watcher sees them.
        person.menu("Twin", "Twin History")
        await person.wait_to_see("1 version seen this session")
        # The new window comes to the front first; the person then clicks back into the editor.
        await until(lambda: QApplication.activeWindow() is not person.window, 15, "the history")
        for seen, interval in ((2, 11), (3, 22)):
            await _save_interval(person, interval)
            await person.wait_to_see(f"{seen} versions seen this session")

        await _compare_the_saves(person)
        assert _diff_shows(person, "-", '"interval": 11')

    qrun(journey(), timeout=120)


def test_quick_saves_each_land_in_the_history(person, qrun):
    """Two saves back to back, well inside one poll: each is a version in the history."""
    tree = person.window.tree_view

    async def journey():
        person.menu("View", "Watch Interval", "Every 60 s")  # no poll can catch them
        person.click_row(tree, "myFirstDevice")
        await person.wait_to_see("Watching myFirstDevice every 60 s")
        await person.wait_to_see('"deviceId": "myFirstDevice"')
        person.menu("Twin", "Twin History")
        await person.wait_to_see("1 version seen this session")
        await until(lambda: QApplication.activeWindow() is not person.window, 15, "the history")
        for interval in (11, 22):  # back to back
            await _save_interval(person, interval)
        await person.wait_to_see("3 versions seen this session", within=2)
        await _compare_the_saves(person)

    qrun(journey(), timeout=120)
