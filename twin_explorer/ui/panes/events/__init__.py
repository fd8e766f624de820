"""The Events pane: the hub's event stream live (telemetry, twin changes, connections,
lifecycle), filtered, decoded, paused, cleared and recorded."""

from __future__ import annotations

from twin_explorer.ui.panes.events.model import EventsModel
from twin_explorer.ui.panes.events.pane import EventsPane
from twin_explorer.ui.panes.events.widget import EventsWidget

__all__ = ["EventsModel", "EventsPane", "EventsWidget"]
