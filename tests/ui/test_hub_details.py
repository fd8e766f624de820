"""Local Hub Details as a component: what a person sees of the masked key."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QWidget

from tests.ui.hub_info import INFO, KEY
from twin_explorer.ui.chrome.hub_details import LocalHubDetailsDialog
from twin_explorer.ui.chrome.hub_details.snippets import MASK


def _in_sight(widget: QWidget, position: int) -> bool:
    """Whether the character at ``position`` of the widget's text is drawn where it shows."""
    if isinstance(widget, QLineEdit):
        rect = widget.contentsRect()
        first = widget.cursorPositionAt(QPoint(rect.left() + 1, rect.center().y()))
        last = widget.cursorPositionAt(QPoint(rect.right() - 1, rect.center().y()))
        return first <= position < last
    assert isinstance(widget, QPlainTextEdit)
    cursor = QTextCursor(widget.document())
    cursor.setPosition(position)
    return widget.viewport().rect().contains(widget.cursorRect(cursor).center())


def _text(widget: QWidget) -> str:
    return widget.text() if isinstance(widget, QLineEdit) else widget.toPlainText()


def test_the_masked_key_is_in_sight(qtbot):
    dialog = LocalHubDetailsDialog(INFO)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    environment = dialog.snippet_views["Environment"]
    for widget in (dialog.connection_string, environment):
        text = _text(widget)
        assert KEY not in text
        mask_end = text.index(MASK) + len(MASK) - 1
        assert _in_sight(widget, mask_end), f"{widget.objectName()}: the mask is out of sight"

    dialog.resize(560, dialog.height())  # a narrow dialog wraps rather than hides it
    text = _text(dialog.connection_string)
    mask_end = text.index(MASK) + len(MASK) - 1
    qtbot.waitUntil(lambda: dialog.width() == 560 and _in_sight(dialog.connection_string, mask_end))


def test_show_reveals_the_whole_key_in_sight(qtbot):
    dialog = LocalHubDetailsDialog(INFO)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.show_button.click()
    text = _text(dialog.connection_string)
    assert _in_sight(dialog.connection_string, text.index(KEY) + len(KEY) - 1)
    dialog.show_button.click()
    assert KEY not in _text(dialog.connection_string)
