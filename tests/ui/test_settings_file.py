"""The declared settings through the window's INI file (``QSettings``), in a temp home."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from twin_explorer.service.settings import (
    DECLARED,
    EXPORT_DIR,
    HUB_LAST,
    LOG_CAPACITY,
    WATCH_INTERVAL,
    WINDOW_GEOMETRY,
)
from twin_explorer.ui.chrome.settings import settings, settings_file


def test_each_setting_round_trips_through_the_ini_file_with_its_type():
    fresh = settings()
    for setting in DECLARED:
        assert fresh.get(setting) == setting.default
    written = {
        HUB_LAST: "Production hub",
        WATCH_INTERVAL: 5.0,
        LOG_CAPACITY: 50_000,
        EXPORT_DIR: "/tmp/exports",
    }
    for setting, value in written.items():
        settings().set(setting, value)
    settings().set(WINDOW_GEOMETRY, QByteArray(b"\x01\xd9\xd0\xcb\x00\x03"))  # as Qt saves it
    again = settings()  # a new run reads the file again
    for setting, value in written.items():
        read = again.get(setting)
        assert read == value and type(read) is setting.type
    assert again.get(WINDOW_GEOMETRY) == b"\x01\xd9\xd0\xcb\x00\x03"


def test_the_keys_in_a_file_from_an_earlier_version_still_read():
    earlier = QSettings(str(settings_file()), QSettings.Format.IniFormat)
    earlier.setValue("watch/interval", 10.0)
    earlier.setValue("patchlog/capacity", 1000)
    earlier.setValue("hub/last", "Staging")
    earlier.sync()
    assert settings_file().read_text().count("=") == 3
    now = settings()
    assert now.get(WATCH_INTERVAL) == 10.0
    assert now.get(LOG_CAPACITY) == 1000
    assert now.get(HUB_LAST) == "Staging"
