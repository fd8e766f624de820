"""Colours and spacing for the whole window, in light and in dark.

Every colour the UI draws that is not the palette's own is a named role here with a
light and a dark value, each chosen for a WCAG contrast of at least 4.5:1 against every
background it is drawn on (tests/ui/test_theme.py computes it). Which value is used
follows the application palette, so a widget is right whichever way the palette became
dark. The app follows the OS colour scheme at start and when it changes; when the
platform offers no dark palette of its own (offscreen, a plain X11 session with
``GTK_THEME=Adwaita:dark``), Fusion with a dark palette stands in.

Widgets take colours three ways, all re-applied when the palette changes:
- ``style(widget, css)``: a style sheet with ``$role`` placeholders (labels, bars);
- ``colour(role)`` / ``brush(role)`` at paint or data() time (models, painters);
- ``on_change(owner, callback)`` for colours baked into items or text formats.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from string import Template

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication, QLayout, QStyleFactory, QWidget
from shiboken6 import isValid


@dataclass(frozen=True)
class Pair:
    light: str
    dark: str

    def pick(self, dark: bool) -> str:
        return self.dark if dark else self.light


# Colours text is drawn in (on the palette's base/window and on the backgrounds below).
FOREGROUNDS: dict[str, Pair] = {
    "key": Pair("#7b1fa2", "#d7a8ff"),  # JSON object keys
    "string": Pair("#2e6b30", "#95d99a"),
    "number": Pair("#1357a8", "#8cc4ff"),
    "literal": Pair("#a63c00", "#ffb27a"),  # true, false, null
    "punct": Pair("#5c5c5c", "#b0b0b0"),
    "error": Pair("#b71c1c", "#ff9c94"),
    "warning": Pair("#7a4f00", "#f2c463"),
    "ok": Pair("#2e6b30", "#8fd694"),
    "info": Pair("#1357a8", "#8cc4ff"),
    "accent": Pair("#6a1b9a", "#d7a8ff"),
    "muted": Pair("#5f5f5f", "#a9a9a9"),  # line numbers, disabled devices, idle states
    "text": Pair("#1a1a1a", "#ececec"),  # plain text on the tinted backgrounds below
}
# Backgrounds text is drawn on: tinted panes, diff lines, message bars.
BACKGROUNDS: dict[str, Pair] = {
    "read_only": Pair("#f3f3f3", "#262626"),
    "gutter": Pair("#f7f7f7", "#242424"),
    "read_only_gutter": Pair("#e9e9e9", "#2a2a2a"),
    "added": Pair("#dcf5dc", "#1e3b24"),
    "removed": Pair("#fde2e2", "#4a2327"),
    "changed": Pair("#fff3c4", "#3d3719"),
    "filler": Pair("#ececec", "#303030"),  # the side of a diff row that has no line
    "hunk": Pair("#ddf0ff", "#1b3349"),
    "error_bg": Pair("#fdecea", "#4a2020"),
    "warning_bg": Pair("#fff3c4", "#3d3719"),
    "info_bg": Pair("#e3f2fd", "#1b3349"),
    "ok_bg": Pair("#dcf5dc", "#1e3b24"),
    "neutral_bg": Pair("#ececec", "#303030"),
}
# Frames around the tinted bars (decoration: no text is drawn in them).
BORDERS: dict[str, Pair] = {
    "error_border": Pair("#f5c2c0", "#7a3434"),
    "warning_border": Pair("#f0d264", "#6e6126"),
    "info_border": Pair("#90caf9", "#2f5a80"),
}
ROLES: dict[str, Pair] = {**FOREGROUNDS, **BACKGROUNDS, **BORDERS}

# The one spacing for the whole window: between widgets, and around a pane's content.
SPACING = 6
MARGIN = 6

# Fusion's dark palette where the platform has none (the roles Fusion draws with).
DARK_PALETTE = {
    QPalette.ColorRole.Window: "#2b2b2b",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1e1e",
    QPalette.ColorRole.AlternateBase: "#262626",
    QPalette.ColorRole.ToolTipBase: "#3a3a3a",
    QPalette.ColorRole.ToolTipText: "#ececec",
    QPalette.ColorRole.PlaceholderText: "#9a9a9a",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#353535",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff9c94",
    QPalette.ColorRole.Light: "#4a4a4a",
    QPalette.ColorRole.Midlight: "#3c3c3c",
    QPalette.ColorRole.Mid: "#2f2f2f",
    QPalette.ColorRole.Dark: "#1a1a1a",
    QPalette.ColorRole.Shadow: "#0d0d0d",
    QPalette.ColorRole.Highlight: "#2f65ca",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#8cc4ff",
    QPalette.ColorRole.LinkVisited: "#d7a8ff",
}
DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#8a8a8a",
    QPalette.ColorRole.Text: "#8a8a8a",
    QPalette.ColorRole.ButtonText: "#8a8a8a",
    QPalette.ColorRole.Button: "#303030",
    QPalette.ColorRole.Highlight: "#3a3a3a",
}

_CSS = "themeCss"  # widget property: the style sheet template ``style`` applied
# The widgets ``style`` gave a template, until destroyed: a palette change restyles these
# only, never walking every widget of the application (some, like a plot library's,
# may be half torn down at that moment).
_styled: dict[int, QWidget] = {}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, value in DARK_PALETTE.items():
        palette.setColor(role, QColor(value))
    for role, value in DARK_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(value))
    return palette


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (default: the application's) draws light text on dark."""
    if palette is None:
        palette = QApplication.palette()
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    return window.lightnessF() < text.lightnessF()


def hex_colour(role: str, dark: bool | None = None) -> str:
    return ROLES[role].pick(is_dark() if dark is None else dark)


def colour(role: str, dark: bool | None = None) -> QColor:
    return QColor(hex_colour(role, dark))


_brushes: dict[tuple[str, bool], QBrush] = {}


def brush(role: str) -> QBrush:
    """A shared brush for ``role`` in the current scheme (for models' data())."""
    key = (role, is_dark())
    found = _brushes.get(key)
    if found is None:
        found = _brushes[key] = QBrush(colour(role, key[1]))
    return found


def css(template: str, dark: bool | None = None) -> str:
    """``template`` with each ``$role`` replaced by its colour."""
    dark = is_dark() if dark is None else dark
    return Template(template).substitute({name: pair.pick(dark) for name, pair in ROLES.items()})


def style(widget: QWidget, template: str) -> None:
    """Give ``widget`` the style sheet ``template`` (``$role`` placeholders), now and
    again whenever the palette changes. An empty template clears it."""
    _watcher()
    if widget.property(_CSS) is None:
        key = id(widget)
        _styled[key] = widget
        widget.destroyed.connect(lambda *_: _styled.pop(key, None))
    widget.setProperty(_CSS, template)
    _apply(widget, template)


def text_colour(widget: QWidget, role: str | None) -> None:
    """Draw ``widget``'s text in ``role`` (None: the palette's own text colour)."""
    style(widget, f"color: ${role};" if role else "")


def _apply(widget: QWidget, template: str) -> None:
    sheet = css(template) if template else ""
    if widget.styleSheet() != sheet:  # setting a sheet re-polishes: skip when unchanged
        widget.setStyleSheet(sheet)


def pane_layout(layout: QLayout, *, margins: bool = False) -> QLayout:
    """The window's one spacing on ``layout``; ``margins`` for a pane's outer layout."""
    layout.setSpacing(SPACING)
    m = MARGIN if margins else 0
    layout.setContentsMargins(m, m, m, m)
    return layout


class _Hook(QObject):
    """Calls back for its parent; goes (and is disconnected) with it."""

    def __init__(self, owner: QObject, callback: Callable[[], None]) -> None:
        super().__init__(owner)
        self._callback = callback

    @Slot()
    def fire(self) -> None:
        self._callback()


def on_change(owner: QObject, callback: Callable[[], None]) -> None:
    """Call ``callback`` after the palette changed, for as long as ``owner`` lives."""
    hook = _Hook(owner, callback)
    _watcher().changed.connect(hook.fire)


class Watcher(QObject):
    """Re-applies the colours when the application palette changes, and follows the OS
    colour scheme once ``follow_system`` was called."""

    changed = Signal()

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._app = app
        self._forced_from: tuple[str, QPalette] | None = None  # style and palette before
        self._following = False
        # The signal, not an application-wide event filter: that filter would call into
        # Python for every event of every object, the whole time the app runs.
        app.paletteChanged.connect(self._restyle)

    @Slot()
    def _restyle(self) -> None:
        _brushes.clear()
        for widget in list(_styled.values()):
            if not isValid(widget):
                continue
            template = widget.property(_CSS)
            if template is not None:
                _apply(widget, template)
        self.changed.emit()

    def follow_system(self) -> None:
        self.apply_scheme(system_scheme())
        if not self._following:
            self._following = True
            self._app.styleHints().colorSchemeChanged.connect(self.apply_scheme)

    @Slot(Qt.ColorScheme)
    def apply_scheme(self, scheme: Qt.ColorScheme) -> None:
        """Make the palette match ``scheme``: the platform's when it has one, else Fusion's
        dark palette for Dark, and back to what was there for Light."""
        app = self._app
        if scheme == Qt.ColorScheme.Dark and not is_dark(app.palette()):
            self._forced_from = (app.style().name(), app.palette())
            app.setStyle(QStyleFactory.create("Fusion"))
            app.setPalette(dark_palette())
        elif scheme != Qt.ColorScheme.Dark and self._forced_from is not None:
            style_name, palette = self._forced_from
            self._forced_from = None
            app.setStyle(QStyleFactory.create(style_name))
            app.setPalette(palette)


def system_scheme() -> Qt.ColorScheme:
    """The OS colour scheme as Qt reports it; where Qt cannot tell (no settings portal,
    offscreen), a GTK theme named ``...:dark`` or ``...-dark`` still means dark."""
    scheme = QApplication.styleHints().colorScheme()
    if scheme != Qt.ColorScheme.Unknown:
        return scheme
    gtk = os.environ.get("GTK_THEME", "").lower()
    if gtk.endswith((":dark", "-dark")):
        return Qt.ColorScheme.Dark
    return Qt.ColorScheme.Unknown


_instance: Watcher | None = None


def _watcher() -> Watcher:
    global _instance
    app = QApplication.instance()
    if _instance is None or not isValid(_instance):
        assert isinstance(app, QApplication), "the theme needs a QApplication"
        _instance = Watcher(app)
    return _instance


def follow_system() -> Watcher:
    """Match the OS colour scheme now and whenever it changes (call once, at start)."""
    watcher = _watcher()
    watcher.follow_system()
    return watcher
