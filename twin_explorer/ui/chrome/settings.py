"""Where the window's settings live: the declared settings (``service.settings``) over an
INI file under the config dir (never the registry or a plist)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from twin_explorer import paths
from twin_explorer.service.settings import Settings


def settings_file() -> Path:
    return paths.config_dir() / "ui.ini"


def settings() -> Settings:
    """The declared settings, read and written through the INI file."""
    return Settings(QSettings(str(settings_file()), QSettings.Format.IniFormat))
