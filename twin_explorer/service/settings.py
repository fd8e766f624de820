"""The window's settings, declared once: each key with its type, default and meaning, read
and written through ``Settings`` only. No Qt: the store (``QSettings`` in the window) is
injected, and only needs ``value``, ``setValue`` and ``sync``.

Keys never change once shipped: people's settings files keep working across versions.
A value that does not read as its type (a hand-edited file) reads as the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from twin_explorer.service.patchlog import DEFAULT_CAPACITY
from twin_explorer.service.session import LOCAL_HUB
from twin_explorer.service.watch import DEFAULT_INTERVAL, MIN_INTERVAL

T = TypeVar("T", str, int, float, bytes)


@dataclass(frozen=True)
class Setting(Generic[T]):
    key: str
    type: type[T]
    default: T
    description: str
    minimum: T | None = None  # a smaller number reads as this


HUB_LAST = Setting("hub/last", str, LOCAL_HUB, "The connection opened at start: the one used last")
WATCH_INTERVAL = Setting(
    "watch/interval",
    float,
    DEFAULT_INTERVAL,
    "Seconds between polls of a watched twin",
    minimum=MIN_INTERVAL,
)
LOG_CAPACITY = Setting(
    "patchlog/capacity", int, DEFAULT_CAPACITY, "How many rows the patch log keeps", minimum=100
)
EXPORT_DIR = Setting(
    "patchlog/export_dir", str, "", "The folder the patch log was exported to last"
)
WINDOW_GEOMETRY = Setting("window/geometry", bytes, b"", "The window's size and place (Qt's bytes)")
WINDOW_STATE = Setting(
    "window/state", bytes, b"", "Where the toolbar and docks are and which show (Qt's bytes)"
)
MAIN_SPLITTER = Setting(
    "splitters/main", bytes, b"", "How the tree and the twin editor share the width (Qt's bytes)"
)

DECLARED: tuple[Setting[Any], ...] = (
    HUB_LAST,
    WATCH_INTERVAL,
    LOG_CAPACITY,
    EXPORT_DIR,
    WINDOW_GEOMETRY,
    WINDOW_STATE,
    MAIN_SPLITTER,
)


class Store(Protocol):
    def value(self, key: str, defaultValue: Any = ...) -> Any: ...  # Qt's names
    def setValue(self, key: str, value: Any) -> None: ...
    def sync(self) -> None: ...


def _read(setting: Setting[T], raw: Any) -> T:
    kind = setting.type
    if kind is bytes:
        if isinstance(raw, str | int | float | bool):
            raise TypeError(raw)
        return bytes(raw)  # type: ignore[return-value]  # bytes or a buffer (QByteArray)
    if kind is str:
        if not isinstance(raw, str):
            raise TypeError(raw)
        return raw  # type: ignore[return-value]
    value = kind(raw)  # an INI file gives numbers back as text
    if setting.minimum is not None:
        value = max(setting.minimum, value)
    return value


class Settings:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, setting: Setting[T]) -> T:
        raw = self.store.value(setting.key, None)
        if raw is None:
            return setting.default
        try:
            return _read(setting, raw)
        except (TypeError, ValueError, OverflowError):
            return setting.default

    def set(self, setting: Setting[T], value: Any) -> None:
        """Keep ``value`` (of the setting's type, or what the store keeps for it, like
        Qt's QByteArray for bytes) and write the file now."""
        self.store.setValue(setting.key, value)
        self.store.sync()
