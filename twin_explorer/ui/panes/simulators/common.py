"""Small pieces the simulator panels share."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QComboBox, QLabel, QListWidget, QPlainTextEdit, QSplitter, QWidget

from twin_explorer.ui.common import theme

E = TypeVar("E", bound=Enum)

LIST_LIMIT = 1000  # rows kept in a panel's lists: a demo may run for hours
STATUS_COLOURS = {  # theme roles
    "connected": "ok",
    "syncing": "info",
    "connecting": "info",
    "reconnecting": "warning",
    "disconnected": "warning",
    "failed": "error",
    "closed": "muted",
    "idle": "muted",
}


def chosen(combo: QComboBox, kind: type[E]) -> E:
    """The enum member a combo box's current item stands for.

    A QComboBox gives back a StrEnum member stored as item data as a plain str, and the
    simulator compares members by identity: hand it the member, never the str.
    """
    return kind(combo.currentData())


def choose(combo: QComboBox, member: Enum) -> None:
    """Select the item that stands for ``member``."""
    combo.setCurrentIndex(combo.findData(member.value))


def mono() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def clock(iso: str) -> str:
    """``HH:MM:SS`` from an IoT Hub timestamp, for list rows."""
    return iso[11:19] if len(iso) >= 19 else iso


def json_editor(name: str, text: str = "") -> QPlainTextEdit:
    editor = QPlainTextEdit(text)
    editor.setObjectName(name)
    editor.setFont(mono())
    editor.setTabChangesFocus(True)
    return editor


def error_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    theme.text_colour(label, "error")
    label.setWordWrap(True)
    return label


def parse_json(text: str, what: str) -> tuple[Any, str]:
    """(value, "") or (None, problem in words); empty text is null."""
    if not text.strip():
        return None, ""
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as exc:
        return None, f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."


def prepend(widget: QListWidget, text: str, limit: int = LIST_LIMIT) -> None:
    """Newest first; the oldest rows fall off past ``limit``."""
    widget.insertItem(0, text)
    while widget.count() > limit:
        widget.takeItem(widget.count() - 1)


def side_by_side(name: str, left: QWidget, right: QWidget, stretch: tuple[int, int]) -> QSplitter:
    """Two parts side by side: the dock is wide and short, so a list beside its form (or
    its details) stays in sight. Neither part collapses to nothing."""
    split = QSplitter(Qt.Orientation.Horizontal)
    split.setObjectName(name)
    split.setChildrenCollapsible(False)
    split.addWidget(left)
    split.addWidget(right)
    split.setStretchFactor(0, stretch[0])
    split.setStretchFactor(1, stretch[1])
    return split
