"""Hub → Local Hub Details: the running local hub's addresses, CA and ready-to-paste code."""

from __future__ import annotations

from twin_explorer.ui.chrome.hub_details.dialog import LocalHubDetailsDialog
from twin_explorer.ui.chrome.hub_details.snippets import Snippets, snippets

__all__ = ["LocalHubDetailsDialog", "Snippets", "snippets"]
