"""The real main window on a real local hub, for GUI tests."""

from __future__ import annotations

from twin_explorer.service.hub import HubService
from twin_explorer.ui.main_window import MainWindow


def service_for(hub) -> HubService:
    """A HubService on a ``tests.hubfixtures.LocalHubProcess`` (trusting its CA)."""
    return HubService(hub.service_connection_string, ca_cert=hub.ca_cert, use_env_proxies=False)


OPEN_WINDOWS: list[MainWindow] = []  # shut down by the qloop fixture, inside its loop


def open_window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    OPEN_WINDOWS.append(window)
    window.show()
    qtbot.waitExposed(window)
    return window
