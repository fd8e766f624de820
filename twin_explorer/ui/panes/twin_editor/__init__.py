"""The twin editor widgets: text with validation, read-only rest, diff, desired vs reported,
and the conflict view."""

from __future__ import annotations

from twin_explorer.ui.panes.twin_editor.editor import TwinEditor

__all__ = ["TwinEditor"]
