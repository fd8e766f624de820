"""Bulk twin changes: the "Change Many Twins" window, opened from the Twin menu and the
device tree's context menu with the tree's selection as the twins to change."""

from __future__ import annotations

from twin_explorer.ui.panes.bulk.pane import BulkPane

__all__ = ["BulkPane"]
