"""Journey tests: the app as a person starts it (the local hub with its demo data)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from tests.ui.person import Person


@pytest.fixture
def person(qtbot, qloop) -> Person:
    """The main window as it first opens: no saved connection, so the demo local hub."""
    window = open_window(qtbot)
    window.activateWindow()  # as a desktop does for a window it opens (Xvfb has no WM)
    window.open_hub()
    person = Person(window)
    qloop.run_until_complete(
        until(lambda: person.sees("myFirstDevice"), 60, "the demo hub's devices in the tree")
    )
    qloop.run_until_complete(
        until(lambda: QApplication.activeWindow() is window, 15, "the window in front")
    )
    return person
