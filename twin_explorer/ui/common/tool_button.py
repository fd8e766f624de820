"""A pane's small text button, named for tests and explained by its tooltip."""

from __future__ import annotations

from PySide6.QtWidgets import QToolButton


def tool_button(name: str, text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setObjectName(name)
    button.setText(text)
    button.setToolTip(tip)
    return button
