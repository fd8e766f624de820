"""Toolbar icons that read in light and in dark.

Style icons (Fusion's play triangle, arrows) are black whatever the palette, and their
disabled forms fade into a dark toolbar. So each icon here is a simple glyph painted in
the palette's own text colour: the normal text colour, the disabled text colour for a
disabled action (made readable if the palette's is too faint), the highlighted text
colour on a highlighted menu row. A desktop icon theme's icon is taken instead when the
theme has one that reads on the current window colour. Painted, not SVG: the frozen app
leaves QtSvg out (packaging/bundle_config.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication

GRID = 24.0  # glyphs are drawn on a 24×24 grid, scaled to the pixmap
SIZES = (16, 18, 20, 24, 32)
SCALES = (1.0, 2.0)  # device pixel ratios: plain and HiDPI screens
MIN_CONTRAST = 3.0  # WCAG 2 for graphical objects
OPAQUE = 200  # alpha from which a pixel counts as part of the shape


def _stroke(painter: QPainter, colour: QColor) -> None:
    pen = QPen(colour, 2.2)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def _fill(painter: QPainter, colour: QColor) -> None:
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)


def _refresh(painter: QPainter, colour: QColor) -> None:
    _stroke(painter, colour)
    box = QRectF(4.5, 4.5, 15, 15)
    painter.drawArc(box, 60 * 16, 290 * 16)  # Qt angles: 1/16 degree, counter-clockwise
    # The arrowhead at the arc's start (60°), pointing along the turn.
    tip = QPointF(12 + 7.5 * math.cos(math.radians(60)), 12 - 7.5 * math.sin(math.radians(60)))
    _fill(painter, colour)
    painter.drawPolygon([tip + QPointF(4.5, -1.5), tip + QPointF(-1.5, -4.5), tip + QPointF(0, 3)])


def _save(painter: QPainter, colour: QColor) -> None:
    _stroke(painter, colour)
    body = QPainterPath()
    body.moveTo(4, 4)
    body.lineTo(16.5, 4)
    body.lineTo(20, 7.5)
    body.lineTo(20, 20)
    body.lineTo(4, 20)
    body.closeSubpath()
    painter.drawPath(body)
    painter.drawRect(QRectF(8, 4, 7, 5))  # the shutter
    _fill(painter, colour)
    painter.drawRect(QRectF(7, 13, 10, 7))  # the label


def _play(painter: QPainter, colour: QColor) -> None:
    _fill(painter, colour)
    painter.drawPolygon([QPointF(6.5, 4), QPointF(20, 12), QPointF(6.5, 20)])


def _method(painter: QPainter, colour: QColor) -> None:
    _fill(painter, colour)  # a lightning bolt: a call that makes the device act
    bolt = [(13.5, 2), (5, 13.5), (11, 13.5), (9.5, 22), (19, 9.5), (13, 9.5), (15.5, 2)]
    painter.drawPolygon([QPointF(x, y) for x, y in bolt])


def _query(painter: QPainter, colour: QColor) -> None:
    _stroke(painter, colour)
    painter.drawEllipse(QRectF(4, 4, 11.5, 11.5))
    pen = painter.pen()
    pen.setWidthF(3.2)
    painter.setPen(pen)
    painter.drawLine(QPointF(14.2, 14.2), QPointF(20, 20))


Glyph = Callable[[QPainter, QColor], None]
GLYPHS: dict[str, Glyph] = {
    "refresh": _refresh,
    "save": _save,
    "play": _play,
    "method": _method,
    "query": _query,
}
# The freedesktop icon name a desktop theme may supply for each glyph.
THEME_NAMES = {
    "refresh": "view-refresh",
    "save": "document-save",
    "play": "media-playback-start",
    "method": "system-run",
    "query": "edit-find",
}


def luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: QColor, other: QColor) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable(colour: QColor, ground: QColor, towards: QColor) -> QColor:
    """``colour``, moved towards ``towards`` just enough to reach 3:1 on ``ground``."""
    for step in range(11):
        t = step / 10
        mixed = QColor.fromRgbF(
            colour.redF() + (towards.redF() - colour.redF()) * t,
            colour.greenF() + (towards.greenF() - colour.greenF()) * t,
            colour.blueF() + (towards.blueF() - colour.blueF()) * t,
        )
        if contrast(mixed, ground) >= MIN_CONTRAST:
            return mixed
    return QColor(towards)


def paint(glyph: str, size: int, colour: QColor, scale: float = 1.0) -> QPixmap:
    """``glyph`` in ``colour`` on a transparent ``size``×``size`` (logical) pixmap."""
    pixels = round(size * scale)
    pixmap = QPixmap(pixels, pixels)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(pixels / GRID, pixels / GRID)
    GLYPHS[glyph](painter, colour)
    painter.end()
    pixmap.setDevicePixelRatio(scale)
    return pixmap


def colours(palette: QPalette) -> dict[QIcon.Mode, QColor]:
    """The colour of an icon in each mode, from ``palette``."""
    ground = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    return {
        QIcon.Mode.Normal: text,
        QIcon.Mode.Active: text,
        QIcon.Mode.Disabled: readable(disabled, ground, text),
        QIcon.Mode.Selected: palette.color(QPalette.ColorRole.HighlightedText),
    }


def glyph_icon(glyph: str, palette: QPalette | None = None) -> QIcon:
    """``glyph`` as an icon in ``palette``'s colours (default: the application's)."""
    icon = QIcon()
    for mode, colour in colours(palette or QApplication.palette()).items():
        for size in SIZES:
            for scale in SCALES:
                icon.addPixmap(paint(glyph, size, colour, scale), mode)
    return icon


def reads_on(icon: QIcon, ground: QColor, size: int = 18) -> bool:
    """Whether every opaque pixel of ``icon``, enabled and disabled, reaches 3:1 on ``ground``."""
    for mode in (QIcon.Mode.Normal, QIcon.Mode.Disabled):
        image = icon.pixmap(QSize(size, size), mode).toImage()
        image = image.convertToFormat(QImage.Format.Format_ARGB32)
        opaque = [
            image.pixelColor(x, y)
            for y in range(image.height())
            for x in range(image.width())
            if image.pixelColor(x, y).alpha() >= OPAQUE
        ]
        if not opaque or any(contrast(c, ground) < MIN_CONTRAST for c in opaque):
            return False
    return True


def icon(glyph: str, palette: QPalette | None = None) -> QIcon:
    """The desktop theme's icon for ``glyph`` where it has one that reads on this palette,
    else the painted glyph."""
    palette = palette or QApplication.palette()
    name = THEME_NAMES[glyph]
    if QIcon.hasThemeIcon(name):
        themed = QIcon.fromTheme(name)
        if reads_on(themed, palette.color(QPalette.ColorRole.Window)):
            return themed
    return glyph_icon(glyph, palette)
