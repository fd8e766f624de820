"""The device tree pane and the identity actions that work on its selection."""

from twin_explorer.ui.panes.tree.identity_actions import IdentityActions
from twin_explorer.ui.panes.tree.tree_pane import TreePane

__all__ = ["IdentityActions", "TreePane"]
