"""Journey tests: the app as a person starts it (the local hub with its demo data)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import finish, until
from tests.ui.hubwindow import open_window
from tests.ui.person import Person


@pytest.fixture
def person(qtbot, qloop) -> Person:
    """The main window as it first opens: no saved connection, so the demo local hub."""
    window = open_window(qtbot)
    window.activateWindow()  # as a desktop does for a window it opens (Xvfb has no WM)
    window.open_hub()
    person = Person(window)
    sees_devices = until(lambda: person.sees("myFirstDevice"), 60, "the demo hub's devices")
    finish(qloop, sees_devices, 70, "opening the demo hub")
    in_front = until(lambda: QApplication.activeWindow() is window, 15, "the window in front")
    finish(qloop, in_front, 20, "raising the window")
    return person
