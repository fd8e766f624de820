"""The real main window on a real local hub, for GUI tests."""

from __future__ import annotations

from twin_explorer.ui.main_window import MainWindow

OPEN_WINDOWS: list[MainWindow] = []  # shut down by the qloop fixture, inside its loop


def open_window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    OPEN_WINDOWS.append(window)
    window.show()
    qtbot.waitExposed(window)
    return window
