"""The app's files that are not code: icons and the desktop entry, found in one place.

From a source tree they are in ``resources/`` next to the package; in a frozen build
(PyInstaller) the spec copies that folder into the bundle, under ``sys._MEIPASS``.
Everything that opens one of these files asks this module for its path, so the two
layouts never need to be told apart anywhere else.

Qt is imported only by :func:`app_icon`, so the headless subcommands never load it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from twin_explorer import APP_ID

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon

log = logging.getLogger(__name__)

RESOURCE_DIR = "resources"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


class ResourceMissing(FileNotFoundError):
    """A resource file is not where this build keeps it."""


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def root() -> Path:
    """The folder holding every resource, source tree or frozen bundle alike."""
    if is_frozen():
        bundle = getattr(sys, "_MEIPASS", None) or Path(sys.executable).parent
        return Path(bundle) / RESOURCE_DIR
    return Path(__file__).resolve().parent.parent / RESOURCE_DIR


def path(*parts: str) -> Path:
    """The path of one resource; :class:`ResourceMissing` if this build lacks it."""
    found = root().joinpath(*parts)
    if not found.is_file():
        raise ResourceMissing(f"resource {'/'.join(parts)} not found under {root()}")
    return found


def icon_svg() -> Path:
    return path("icons", f"{APP_ID}.svg")


def icon_png(size: int) -> Path:
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; sizes are {ICON_SIZES}")
    return path("icons", f"{APP_ID}-{size}.png")


def desktop_entry() -> Path:
    """The freedesktop.org launcher entry (Linux menus and docks)."""
    return path(f"{APP_ID}.desktop")


def app_icon() -> QIcon:
    """The window and taskbar icon, every PNG size; a null icon if none is there.

    A missing icon must never stop the app (an installed wheel carries no resources),
    so it is logged rather than raised.
    """
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for size in ICON_SIZES:
        try:
            icon.addFile(str(icon_png(size)))
        except ResourceMissing as exc:
            log.info("app icon: %s", exc)
    return icon
