"""The live patch log, twin watching and twin history (DESIGN "Data flow" 3: Watch)."""

from __future__ import annotations

from twin_explorer.ui.panes.patch_log.model import PatchLogModel
from twin_explorer.ui.panes.patch_log.pane import PatchLogPane
from twin_explorer.ui.panes.patch_log.watching import WatchController
from twin_explorer.ui.panes.patch_log.widget import PatchLogWidget

__all__ = ["PatchLogModel", "PatchLogPane", "PatchLogWidget", "WatchController"]
