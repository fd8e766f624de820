"""Window geometry and splitter sizes, kept between runs in the settings file."""

from __future__ import annotations

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QMainWindow, QSplitter

from twin_explorer.service.settings import (
    MAIN_SPLITTER,
    WINDOW_GEOMETRY,
    WINDOW_STATE,
    Setting,
)
from twin_explorer.ui.chrome.settings import settings

SPLITTERS: dict[str, Setting[bytes]] = {"main": MAIN_SPLITTER}


def save(window: QMainWindow, splitters: dict[str, QSplitter]) -> None:
    store = settings()
    store.set(WINDOW_GEOMETRY, window.saveGeometry())
    store.set(WINDOW_STATE, window.saveState())
    for name, splitter in splitters.items():
        store.set(SPLITTERS[name], splitter.saveState())


def restore(window: QMainWindow, splitters: dict[str, QSplitter]) -> bool:
    """Restore what ``save`` kept; False when there was nothing (first start)."""
    store = settings()
    geometry = store.get(WINDOW_GEOMETRY)
    if not geometry or not window.restoreGeometry(QByteArray(geometry)):
        return False
    state = store.get(WINDOW_STATE)
    if state:
        window.restoreState(QByteArray(state))
    for name, splitter in splitters.items():
        value = store.get(SPLITTERS[name])
        if value:
            splitter.restoreState(QByteArray(value))
    return True
