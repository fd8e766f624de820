"""The real main window on a real local hub, for GUI tests."""

from __future__ import annotations

import asyncio

from tests.ui.conftest import finish, shutdown_window
from twin_explorer.ui.main_window import MainWindow

OPEN_WINDOWS: list[MainWindow] = []  # shut down by the qloop fixture, inside its loop


def open_window(qtbot) -> MainWindow:
    def before_close(window: MainWindow) -> None:
        # pytest-qt closes and deletes its widgets before fixtures end: the window's
        # services (simulated modules, the event stream) stop first, while it exists.
        loop = asyncio.events._get_running_loop()  # the session loop, in a qloop test
        if window in OPEN_WINDOWS and loop is not None:
            OPEN_WINDOWS.remove(window)
            finish(loop, shutdown_window(window), 60, "closing the window")

    window = MainWindow()
    qtbot.addWidget(window, before_close_func=before_close)
    OPEN_WINDOWS.append(window)
    window.show()
    qtbot.waitExposed(window)
    return window
