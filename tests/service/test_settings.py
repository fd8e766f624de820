"""The window's settings, declared once: defaults, types, and what a hand-edited file reads as."""

from __future__ import annotations

from typing import Any

import pytest

from twin_explorer.service import settings as declared
from twin_explorer.service.settings import DECLARED, LOG_CAPACITY, WATCH_INTERVAL, Settings


class DictStore:
    """The smallest store: what ``QSettings`` offers, over a dict (it is a real store)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.syncs = 0

    def value(self, key: str, defaultValue: Any = None) -> Any:  # Qt's names
        return self.values.get(key, defaultValue)

    def setValue(self, key: str, value: Any) -> None:
        self.values[key] = value

    def sync(self) -> None:
        self.syncs += 1


def test_every_setting_is_declared_once_with_its_type_default_and_meaning():
    keys = [setting.key for setting in DECLARED]
    assert len(keys) == len(set(keys))
    module_level = {v for v in vars(declared).values() if isinstance(v, declared.Setting)}
    assert module_level == set(DECLARED)
    for setting in DECLARED:
        assert isinstance(setting.default, setting.type), setting.key
        assert setting.description.strip(), setting.key
    # The keys people's files already hold: they never change.
    assert set(keys) == {
        "hub/last",
        "watch/interval",
        "patchlog/capacity",
        "patchlog/export_dir",
        "window/geometry",
        "window/state",
        "splitters/main",
    }


def test_an_empty_store_reads_the_defaults_and_a_written_value_reads_back():
    store = DictStore()
    settings = Settings(store)
    for setting in DECLARED:
        assert settings.get(setting) == setting.default
    settings.set(WATCH_INTERVAL, 5.0)
    assert settings.get(WATCH_INTERVAL) == 5.0 and store.syncs == 1


@pytest.mark.parametrize(
    ("setting", "raw", "expected"),
    [
        (WATCH_INTERVAL, "10", 10.0),  # an INI file gives numbers back as text
        (WATCH_INTERVAL, "0.01", 0.2),  # below the minimum reads as the minimum
        (WATCH_INTERVAL, "often", WATCH_INTERVAL.default),
        (LOG_CAPACITY, "50000", 50_000),
        (LOG_CAPACITY, "5", 100),
        (LOG_CAPACITY, ["1", "2"], LOG_CAPACITY.default),
        (declared.HUB_LAST, ["a", "b"], declared.HUB_LAST.default),  # "a, b" in an INI
        (declared.WINDOW_GEOMETRY, "not bytes", b""),
        (declared.WINDOW_GEOMETRY, 7, b""),
        (declared.WINDOW_GEOMETRY, bytearray(b"\x01\x02"), b"\x01\x02"),
    ],
)
def test_a_hand_edited_value_reads_as_its_type_or_the_default(setting, raw, expected):
    store = DictStore()
    store.values[setting.key] = raw
    value = Settings(store).get(setting)
    assert value == expected and type(value) is setting.type
