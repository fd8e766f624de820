"""Light and dark: every colour readable on what it is drawn on, and the window follows
the OS colour scheme, at start and while it runs."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QDockWidget, QStyleFactory, QWidget

from tests.ui.editor_fixtures import START, hub, hub_tls, opened, window
from tests.ui.theme_support import contrast, scheme
from twin_explorer.service.edit_diff import diff_documents
from twin_explorer.ui.chrome.notice import NoticeBar
from twin_explorer.ui.common import theme
from twin_explorer.ui.panes.patch_log.diff_view import DiffView
from twin_explorer.ui.panes.twin_editor.code_view import CodeView
from twin_explorer.ui.panes.twin_editor.diff_view import SideBySideView

__all__ = ["hub", "hub_tls", "scheme", "window"]

# Window and base colours of the palettes the app meets: Fusion's light one, its own
# dark one, and GTK's Adwaita light and dark (as Qt's gtk3 theme reports them).
LIGHT_GROUNDS = ("#efefef", "#ffffff", "#f6f5f4", "#fafafa")
DARK_GROUNDS = (
    theme.DARK_PALETTE[QPalette.ColorRole.Window],
    theme.DARK_PALETTE[QPalette.ColorRole.Base],
    "#323232",
    "#353535",
    "#2d2d2d",
)


def test_the_contrast_formula_matches_wcag():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("role", sorted(theme.FOREGROUNDS))
def test_every_text_colour_reads_on_every_background_of_its_scheme(role, dark):
    text = theme.hex_colour(role, dark)
    grounds = [theme.hex_colour(name, dark) for name in theme.BACKGROUNDS]
    grounds += DARK_GROUNDS if dark else LIGHT_GROUNDS
    worst = min(grounds, key=lambda ground: contrast(text, ground))
    assert contrast(text, worst) >= 4.5, f"{role} {text} on {worst}"


def test_the_dark_palette_reads_and_is_dark():
    palette = theme.dark_palette()
    assert theme.is_dark(palette)
    assert not theme.is_dark(QStyleFactory.create("Fusion").standardPalette())
    pairs = [
        (QPalette.ColorRole.WindowText, QPalette.ColorRole.Window),
        (QPalette.ColorRole.Text, QPalette.ColorRole.Base),
        (QPalette.ColorRole.Text, QPalette.ColorRole.AlternateBase),
        (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Button),
        (QPalette.ColorRole.HighlightedText, QPalette.ColorRole.Highlight),
        (QPalette.ColorRole.ToolTipText, QPalette.ColorRole.ToolTipBase),
    ]
    for text, ground in pairs:
        assert contrast(palette.color(text), palette.color(ground)) >= 4.5, (text, ground)


def pixel(widget, x: int, y: int) -> QColor:
    return widget.grab().toImage().pixelColor(x, y)


def test_a_dark_gtk_theme_without_a_dark_palette_gets_fusion_dark(qapp, monkeypatch, scheme):
    assert not theme.is_dark()  # offscreen: the platform has no dark palette
    monkeypatch.setenv("GTK_THEME", "Adwaita:dark")
    theme.follow_system()
    assert theme.is_dark()
    assert qapp.style().name() == "fusion"
    base = QApplication.palette().color(QPalette.ColorRole.Base)
    assert base == QColor(theme.DARK_PALETTE[QPalette.ColorRole.Base])


def test_dark_views_draw_on_dark_and_their_text_reads(qtbot, scheme):
    scheme(Qt.ColorScheme.Dark)
    assert theme.is_dark()

    # JSON colours and the read-only pane.
    view = CodeView(read_only=True)
    qtbot.addWidget(view)
    view.resize(400, 200)
    view.setPlainText(json.dumps({"key": "text", "n": 1, "t": True}, indent=2))
    view.show()
    qtbot.waitUntil(lambda: bool(view.document().findBlockByNumber(1).layout().formats()))
    ground = pixel(view.viewport(), view.viewport().width() - 5, view.viewport().height() - 5)
    assert ground == theme.colour("read_only")
    kinds = set()
    for number in range(view.document().blockCount()):
        for span in view.document().findBlockByNumber(number).layout().formats():
            colour = span.format.foreground().color()
            kinds.add(colour.name())
            assert contrast(colour, ground) >= 4.5, colour.name()
    assert theme.hex_colour("key") in kinds and theme.hex_colour("string") in kinds

    # The message bar: its own dark red, and its words readable on it.
    bar = NoticeBar()
    qtbot.addWidget(bar)
    bar.resize(400, 40)
    bar.show_message("localhost rejected the query")
    bar.ensurePolished()
    bar.label.ensurePolished()
    ground = pixel(bar, bar.width() - 40, bar.height() // 2)
    assert ground == theme.colour("error_bg")
    words = bar.label.palette().color(QPalette.ColorRole.WindowText)
    assert contrast(words, ground) >= 4.5

    # A status label.
    theme.text_colour(bar.label, "ok")
    bar.label.ensurePolished()
    assert bar.label.palette().color(QPalette.ColorRole.WindowText) == theme.colour("ok")

    # Both diff panes.
    side = SideBySideView("hub", "editor")
    qtbot.addWidget(side)
    side.show_rows(diff_documents({"a": 1}, {"a": 2}))
    backgrounds = {s.format.background().color().name() for s in side.right.extraSelections()}
    assert backgrounds == {theme.hex_colour("changed")}
    unified = DiffView()
    qtbot.addWidget(unified)
    unified.show_texts('{"a": 1}', '{"a": 2}')
    colours = set()
    block = unified.unified.document().firstBlock()
    while block.isValid():
        colours.add(block.blockFormat().background().color().name())
        block = block.next()
    assert theme.hex_colour("added") in colours and theme.hex_colour("removed") in colours
    text = QApplication.palette().color(QPalette.ColorRole.Text)
    for name in colours - {"#000000"}:  # "#000000": lines with no background of their own
        assert contrast(text, name) >= 4.5, name


def test_switching_the_scheme_recolours_an_open_editor(window, hub, qrun, scheme):
    editor = window.editor

    async def loaded():
        await opened(window, hub, START)

    qrun(loaded())
    view, rest = editor.text_view, editor.ui.readonly_view

    def key_colour() -> str:
        spans = view.document().findBlockByNumber(1).layout().formats()
        return next(s.format.foreground().color().name() for s in spans if s.length > 2)

    def validity_colour() -> QColor:
        editor.ui.validity.ensurePolished()
        return editor.ui.validity.palette().color(QPalette.ColorRole.WindowText)

    assert key_colour() == theme.FOREGROUNDS["key"].light
    assert validity_colour() == QColor(theme.FOREGROUNDS["ok"].light)
    assert theme.BACKGROUNDS["read_only"].light in rest.styleSheet()

    scheme(Qt.ColorScheme.Dark)
    assert key_colour() == theme.FOREGROUNDS["key"].dark
    assert validity_colour() == QColor(theme.FOREGROUNDS["ok"].dark)
    assert theme.BACKGROUNDS["read_only"].dark in rest.styleSheet()
    window_colour = window.palette().color(QPalette.ColorRole.Window)
    assert window_colour == QColor(theme.DARK_PALETTE[QPalette.ColorRole.Window])

    scheme(Qt.ColorScheme.Light)
    assert key_colour() == theme.FOREGROUNDS["key"].light
    assert theme.BACKGROUNDS["read_only"].light in rest.styleSheet()


def test_a_callback_goes_with_its_owner(qapp, scheme):
    calls = []
    owner = QWidget()
    theme.on_change(owner, lambda: calls.append(theme.is_dark()))
    scheme(Qt.ColorScheme.Dark)
    assert calls == [True]
    owner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    scheme(Qt.ColorScheme.Light)
    assert calls == [True]


def test_panes_share_the_window_spacing(window):
    panes = [window.tree_pane, window.editor_pane, window.log_pane]
    for pane in panes:
        if isinstance(pane, QDockWidget):  # a docked pane: its body is the pane
            pane = pane.widget()
        margins = pane.layout().contentsMargins()
        assert (margins.left(), margins.top()) == (theme.MARGIN, theme.MARGIN), pane.objectName()
        assert pane.layout().spacing() == theme.SPACING, pane.objectName()
