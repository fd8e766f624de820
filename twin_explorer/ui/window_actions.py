"""The window's toolbar, and tooltips that name each action's shortcut."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMainWindow, QStyle, QToolBar

from twin_explorer.ui.shortcuts_dialog import plain, shortcut_text

# What the toolbar shows: (theme icon, the style's icon when the theme has none, label).
Icon = tuple[str, QStyle.StandardPixmap]
REFRESH: Icon = ("view-refresh", QStyle.StandardPixmap.SP_BrowserReload)
SAVE: Icon = ("document-save", QStyle.StandardPixmap.SP_DialogSaveButton)
SIMULATE: Icon = ("media-playback-start", QStyle.StandardPixmap.SP_MediaPlay)
METHOD: Icon = ("system-run", QStyle.StandardPixmap.SP_CommandLink)
QUERY: Icon = ("edit-find", QStyle.StandardPixmap.SP_FileDialogContentsView)


def icon(window: QMainWindow, which: Icon) -> QIcon:
    theme, standard = which
    return QIcon.fromTheme(theme, window.style().standardIcon(standard))


def build_toolbar(window: QMainWindow, entries: list[tuple[QAction, Icon, str]]) -> QToolBar:
    """A toolbar of the frequent actions (the same QActions as the menus)."""
    bar = QToolBar("Main Toolbar", window)
    bar.setObjectName("mainToolBar")
    bar.setMovable(False)
    bar.setIconSize(QSize(18, 18))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for action, which, label in entries:
        action.setIcon(icon(window, which))
        action.setIconText(label)
        bar.addAction(action)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    return bar


def name_shortcuts_in_tooltips(window: QMainWindow) -> None:
    """Every action's tooltip says what it does and, if it has one, its shortcut."""
    for action in window.findChildren(QAction):
        keys = shortcut_text(action)
        if not keys or action.isSeparator():
            continue
        tip = action.toolTip() or plain(action.text())
        if f"({keys})" not in tip:
            action.setToolTip(f"{tip} ({keys})")
