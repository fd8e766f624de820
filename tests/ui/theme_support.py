"""Colour checks (WCAG contrast) and an OS colour-scheme switch, for the theme tests."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from twin_explorer.ui.common import theme


def luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: QColor | str, other: QColor | str) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(QColor(one)), luminance(QColor(other))), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def scheme(qapp):
    """Switch the OS colour scheme the way the platform reports a change."""
    watcher = theme.follow_system()
    hints = qapp.styleHints()

    def switch(to: Qt.ColorScheme) -> None:
        hints.colorSchemeChanged.emit(to)
        qapp.processEvents()

    yield switch
    watcher.apply_scheme(Qt.ColorScheme.Light)
    assert not theme.is_dark()
