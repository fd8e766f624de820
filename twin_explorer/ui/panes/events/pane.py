"""The Events pane built whole from its part of the app model (the event stream): the
list people see (the dock's body) and its menu entries (Hub: Restart Events; File:
Record Events)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from twin_explorer.service.events.stream import EventStream
from twin_explorer.ui.chrome.pane_action import PaneAction
from twin_explorer.ui.panes.events.widget import EventsWidget


class EventsPane(QObject):
    def __init__(self, stream: EventStream, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stream = stream
        self.widget = EventsWidget(stream)
        restart = QAction("Restart &Events", self)
        restart.setObjectName("restartEventsAction")
        restart.setToolTip("Read the hub's event stream again with the Events pane's choices")
        restart.triggered.connect(self.widget.restart)
        record = QAction("&Record Events…", self)
        record.setObjectName("recordEventsAction")
        record.setToolTip("Write every event that arrives to a JSON Lines file")
        record.triggered.connect(self.widget.record_button.click)
        self.actions = {"restart": restart, "record": record}

    def pane_actions(self) -> list[PaneAction]:
        return [
            PaneAction("Hub", self.actions["restart"], separator_before=True),
            PaneAction("File", self.actions["record"]),
        ]

    async def aclose(self) -> None:
        await self.widget.aclose()
