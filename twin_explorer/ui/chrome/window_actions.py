"""The window's toolbar, and tooltips that name each action's shortcut."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QToolBar

from twin_explorer.ui.chrome.shortcuts_dialog import plain, shortcut_text
from twin_explorer.ui.common import icons, theme

# What the toolbar shows: a glyph of ``icons`` and a label.
REFRESH = "refresh"
SAVE = "save"
SIMULATE = "play"
METHOD = "method"
QUERY = "query"
# Left to right, whichever pane offers them.
TOOLBAR_ORDER = (REFRESH, QUERY, SAVE, SIMULATE, METHOD)


def fill_toolbar(
    window: QMainWindow, bar: QToolBar, entries: list[tuple[QAction, str, str]]
) -> None:
    """The toolbar of the frequent actions (the same QActions as the menus), from these
    (action, glyph, label); its icons are painted again when the palette changes."""
    bar.setObjectName("mainToolBar")
    bar.setMovable(False)
    bar.setIconSize(QSize(18, 18))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    bar.toggleViewAction().setText("&Toolbar")
    bar.toggleViewAction().setToolTip("Show or hide the toolbar")

    def paint_icons() -> None:
        for action, glyph, _label in entries:
            action.setIcon(icons.icon(glyph))

    paint_icons()
    theme.on_change(bar, paint_icons)
    for action, _glyph, label in entries:
        action.setIconText(label)
        bar.addAction(action)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)


def name_shortcuts_in_tooltips(window: QMainWindow) -> None:
    """Every action's tooltip says what it does and, if it has one, its shortcut."""
    for action in window.findChildren(QAction):
        keys = shortcut_text(action)
        if not keys or action.isSeparator():
            continue
        tip = action.toolTip() or plain(action.text())
        if f"({keys})" not in tip:
            action.setToolTip(f"{tip} ({keys})")
