"""The toolbar: icons that read in dark, enabled and disabled; one Refresh; and the
View menu hides and shows it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolBar

from tests.ui.hubwindow import open_window
from tests.ui.person import Person
from tests.ui.theme_support import contrast, scheme
from twin_explorer.ui.common import theme

__all__ = ["scheme"]

OPAQUE = 200


def _pixels(image: QImage) -> list[QColor]:
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    return [image.pixelColor(x, y) for y in range(image.height()) for x in range(image.width())]


def test_toolbar_icons_read_on_the_dark_toolbar_enabled_and_disabled(qtbot, scheme):
    window = open_window(qtbot)  # opened light: the icons must follow the switch
    scheme(Qt.ColorScheme.Dark)
    assert theme.is_dark()
    bar = window.findChild(QToolBar, "mainToolBar")
    QApplication.processEvents()
    shot = bar.grab().toImage()
    ground = shot.pixelColor(shot.width() - 3, shot.height() // 2)  # right of the buttons
    assert ground.lightnessF() < 0.3, ground.name()
    size = bar.iconSize()
    actions = [a for a in bar.actions() if not a.isSeparator()]
    assert len(actions) >= 4
    for action in actions:
        name = action.iconText()
        for mode in (QIcon.Mode.Normal, QIcon.Mode.Disabled):
            opaque = [c for c in _pixels(action.icon().pixmap(size, mode).toImage())]
            opaque = [c for c in opaque if c.alpha() >= OPAQUE]
            assert len(opaque) >= 10, f"{name}: the {mode.name} icon is (nearly) empty"
            worst = min(contrast(c, ground) for c in opaque)
            assert worst >= 3.0, f"{name} {mode.name}: {worst:.2f}:1 on {ground.name()}"
        # As drawn: the button's icon area has the icon's pixels, whatever its state.
        button = bar.widgetForAction(action)
        drawn = button.grab().toImage().copy(0, 0, size.width() + 8, button.height())
        seen = [c for c in _pixels(drawn) if contrast(c, ground) >= 3.0]
        state = "enabled" if action.isEnabled() else "disabled"
        assert len(seen) >= 10, f"{name} ({state}) draws no readable icon"
    # Both states were on screen: Refresh is on, Save Twin off with no twin open.
    assert {a.isEnabled() for a in actions} == {True, False}


def test_one_refresh_and_the_view_menu_hides_and_shows_the_toolbar(qtbot):
    window = open_window(qtbot)
    person = Person(window)
    assert person.button_texts().count("Refresh") == 1  # the toolbar's; F5 and Hub → Refresh too
    # Query takes the keyboard to the query box: typed text and Enter run it.
    person.click("Query")
    qtbot.waitUntil(lambda: QApplication.focusWidget() is person.field("Query"))
    QTest.keyClicks(QApplication.focusWidget(), "SELECT * FROM devices")
    assert person.field("Query").text() == "SELECT * FROM devices"
    person.menu("View", "Toolbar")
    qtbot.waitUntil(lambda: not window.findChild(QToolBar, "mainToolBar").isVisible())
    assert "Refresh" not in person.button_texts()
    assert "Refresh" in person.menu_items("Hub")  # still reachable without the toolbar
    person.menu("View", "Toolbar")
    qtbot.waitUntil(lambda: window.findChild(QToolBar, "mainToolBar").isVisible())
    assert person.button_texts().count("Refresh") == 1


def test_a_dark_icon_is_painted_in_the_palettes_colours(qapp):
    from twin_explorer.ui.common import icons

    palette = theme.dark_palette()
    ground = palette.color(palette.ColorRole.Window)
    for glyph in icons.GLYPHS:
        assert icons.reads_on(icons.glyph_icon(glyph, palette), ground), glyph
        light = icons.glyph_icon(glyph, QApplication.style().standardPalette())
        assert not icons.reads_on(light, ground), f"{glyph}: a light palette's icon reads on dark?"
    assert QSize(18, 18) == icons.glyph_icon("play", palette).actualSize(QSize(18, 18))
