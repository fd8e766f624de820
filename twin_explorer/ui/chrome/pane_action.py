"""What a pane offers the window's menus and toolbar: one kind of entry for every pane,
placed by the window in one loop."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu


@dataclass(frozen=True)
class ToolbarEntry:
    glyph: str  # a name in ``icons``
    label: str  # the text beside the icon


@dataclass(frozen=True)
class PaneAction:
    menu: str  # the menu's title without "&": "File", "Hub", "Twin", "Module", "View", "Help"
    action: QAction | QMenu  # a QMenu goes in as a submenu
    separator_before: bool = False  # a line before it (never at the top of a menu)
    toolbar: ToolbarEntry | None = None  # also on the toolbar, with this icon and label


def place(entries: list[PaneAction], menus: dict[str, QMenu]) -> None:
    """Each entry into its menu, in order."""
    for entry in entries:
        menu = menus[entry.menu]
        if entry.separator_before and menu.actions() and not menu.actions()[-1].isSeparator():
            menu.addSeparator()
        if isinstance(entry.action, QMenu):
            menu.addMenu(entry.action)
        else:
            menu.addAction(entry.action)
