"""Window geometry and splitter sizes, kept between runs in an INI file."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from twin_explorer import paths


def settings() -> QSettings:
    """The app's UI settings file, under the config dir (never the registry/plist)."""
    return QSettings(str(paths.config_dir() / "ui.ini"), QSettings.Format.IniFormat)


def save(window: QMainWindow, splitters: dict[str, QSplitter]) -> None:
    store = settings()
    store.setValue("window/geometry", window.saveGeometry())
    store.setValue("window/state", window.saveState())
    for name, splitter in splitters.items():
        store.setValue(f"splitters/{name}", splitter.saveState())
    store.sync()


def restore(window: QMainWindow, splitters: dict[str, QSplitter]) -> bool:
    """Restore what ``save`` kept; False when there was nothing (first start)."""
    store = settings()
    geometry = store.value("window/geometry")
    if not isinstance(geometry, QByteArray) or not window.restoreGeometry(geometry):
        return False
    state = store.value("window/state")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    for name, splitter in splitters.items():
        value = store.value(f"splitters/{name}")
        if isinstance(value, QByteArray):
            splitter.restoreState(value)
    return True
