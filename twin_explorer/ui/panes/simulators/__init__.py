"""Panels for simulated modules: a dock with one tab per module."""

from __future__ import annotations

from twin_explorer.ui.panes.simulators.dock import SimulatorDock, session_transport
from twin_explorer.ui.panes.simulators.panel import SimulatorPanel

__all__ = ["SimulatorDock", "SimulatorPanel", "session_transport"]
