"""A header label too long for its room: one line, elided in the middle, whole in its tooltip."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QHBoxLayout, QToolTip, QWidget

from twin_explorer.ui.common.elided_label import ElidedLabel

INFO = "etag AAAAAAAAAAU= · desired $version 3 · reported $version 3"


def test_a_long_label_is_elided_on_one_line_and_says_it_all_in_its_tooltip(qtbot):
    row = QWidget()
    qtbot.addWidget(row)
    layout = QHBoxLayout(row)
    title = ElidedLabel("<b>myFirstDevice/myFirstModule</b> ●")
    title.setToolTip("Unsaved changes")
    info = ElidedLabel(INFO, leftover=True)
    layout.addWidget(title)
    layout.addWidget(info, 1)
    row.resize(1000, 40)
    row.show()
    qtbot.waitExposed(row)
    assert not title.is_elided() and not info.is_elided()

    row.resize(320, 40)
    qtbot.waitUntil(lambda: info.width() < 100)
    assert title.width() >= title.sizeHint().width()  # the identity keeps its room first
    assert info.is_elided()
    assert info.height() <= 2 * info.fontMetrics().lineSpacing()

    row.resize(120, 40)
    qtbot.waitUntil(title.is_elided)
    assert title.width() < title.sizeHint().width()
    QApplication.sendEvent(title, QHelpEvent(QEvent.Type.ToolTip, QPoint(5, 5), QPoint(5, 5)))
    assert QToolTip.text() == "myFirstDevice/myFirstModule ●\nUnsaved changes"
    QApplication.sendEvent(info, QHelpEvent(QEvent.Type.ToolTip, QPoint(5, 5), QPoint(5, 5)))
    assert QToolTip.text() == INFO
    QToolTip.hideText()
