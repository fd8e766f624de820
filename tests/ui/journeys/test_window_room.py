"""The editor stays usable when the bottom docks open, at a small and a large size, and
when the window is made small or large with them open; made large again, the docks get
their share of the height back."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from tests.ui.conftest import until

SMALL, LARGE = (800, 500), (1400, 900)
LINES = {SMALL: 5, LARGE: 10}  # the editor's text lines at least shown


async def _editor_is_usable(person, size: tuple[int, int]) -> None:
    window = person.window
    await until(lambda: (window.width(), window.height()) == size, 10, f"the window {size}")
    editor = window.findChild(QPlainTextEdit, "twinEditorText")
    spacing = editor.fontMetrics().lineSpacing()
    lines = LINES[size]

    def shown() -> float:
        return editor.viewport().height() / spacing

    try:
        await until(lambda: shown() >= lines, 5)
    except AssertionError:
        raise AssertionError(f"at {size} the editor shows {shown():.1f} lines") from None
    assert (window.width(), window.height()) == size  # never grew by itself
    for name in ("twinTitle", "twinInfo"):
        label = window.findChild(QLabel, name)
        assert label.height() <= 2 * label.fontMetrics().lineSpacing(), (
            f"{name} is {label.height()}px high at {size}: {label.text()!r}"
        )
    for text in ("Save Twin", "Replace Twin", "Reload Twin"):  # beside the header, whole
        button = person.button(text)
        assert button.width() >= button.sizeHint().width(), text


@pytest.mark.parametrize(
    ("first", "then"),
    [(SMALL, LARGE), (LARGE, SMALL)],
    ids=["small-then-large", "large-then-small"],
)
def test_simulated_modules_leave_the_editor_room_and_the_header_one_line(person, qrun, first, then):
    window = person.window
    window.resize(*first)
    tree = window.tree_view

    async def journey():
        await until(lambda: (window.width(), window.height()) == first)
        person.click_row(tree, "myFirstDevice")
        person.press("Right", to=tree)
        await person.wait_to_see("myFirstModule")
        person.click_row(tree, "myFirstModule")
        await person.wait_to_see('"moduleId": "myFirstModule"')
        person.click("Simulate")  # the toolbar: the Simulated Modules dock comes forward
        await person.wait_to_see("Connected")
        await _editor_is_usable(person, first)
        dock = person.pane("Simulated Modules")
        share = dock.height() / window.height()
        window.resize(*then)  # with the dock open
        await _editor_is_usable(person, then)
        window.resize(*first)  # and back: the dock gets its share of the height again
        await _editor_is_usable(person, first)
        await until(lambda: dock.height() / window.height() >= share - 0.02, 5, "the dock back")

    qrun(journey(), timeout=90)
