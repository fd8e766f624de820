"""One simulated module's panel: status and its history, the twin as the module sees it,
desired patches received, reported patches, direct methods, telemetry.

The module's listeners run on the loop, which under qasync is the Qt thread, so the panel
updates its widgets straight from them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.simulator import ModuleEvent, SimulatedModule, Status
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.simulators.common import (
    STATUS_COLOURS,
    clock,
    compact,
    mono,
    prepend,
    pretty,
)
from twin_explorer.ui.panes.simulators.messages_tab import MessagesTab
from twin_explorer.ui.panes.simulators.methods_tab import MethodsTab
from twin_explorer.ui.panes.simulators.reported_tab import ReportedTab
from twin_explorer.ui.panes.simulators.telemetry_tab import TelemetryTab


class SimulatorPanel(QWidget):
    closeRequested = Signal(object)  # this panel
    statusChanged = Signal(str, str)  # identity, status (connected, disconnected, …)

    def __init__(self, module: SimulatedModule, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.module = module
        self.setObjectName("simulatorPanel")
        self.tasks = Tasks()

        kind = "Module" if module.is_module else "Device"
        self.title = QLabel(f"{kind} <b>{module.identity}</b> on {module.host}")
        self.status_label = QLabel()
        self.status_label.setObjectName("simStatus")
        self.status_label.setWordWrap(True)
        self._last_status = ("idle", "not started")
        self.counts = QLabel()
        self.counts.setObjectName("simCounts")
        close = QPushButton("Stop && Close")
        close.setObjectName("simClose")
        close.clicked.connect(lambda: self.closeRequested.emit(self))

        self.history = QListWidget()
        self.history.setObjectName("simHistory")
        self.twin_view = QPlainTextEdit()
        self.twin_view.setObjectName("simTwin")
        self.twin_view.setReadOnly(True)
        self.twin_view.setFont(mono())
        self.desired = QListWidget()
        self.desired.setObjectName("simDesired")
        self.reported = ReportedTab(module, self.tasks)
        self.methods = MethodsTab(module)
        self.telemetry = TelemetryTab(module, self.tasks)
        # Only devices receive cloud-to-device messages.
        self.messages = MessagesTab(module, self.tasks) if module.inbox is not None else None

        self.tabs = QTabWidget()
        self.tabs.setObjectName("simTabs")
        self.tabs.addTab(self.history, "Status")
        self.tabs.addTab(self.twin_view, "Twin")
        self.tabs.addTab(self.desired, "Desired Received")
        self.tabs.addTab(self.reported, "Reported")
        self.tabs.addTab(self.methods, "Methods")
        self.tabs.addTab(self.telemetry, "Telemetry")
        if self.messages is not None:
            index = self.tabs.addTab(self.messages, "Messages")
            self.tabs.setTabToolTip(index, "Cloud-to-device messages this device received")

        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addWidget(self.status_label, 1)
        header.addWidget(close)
        layout = QVBoxLayout(self)
        theme.pane_layout(layout, margins=True)
        layout.addLayout(header)
        layout.addWidget(self.counts)
        layout.addWidget(self.tabs, 1)

        for event in module.history:
            self._status(event)
        self._show_twin()
        self._update_counts()
        self._unsubscribe: Callable[[], None] | None = module.subscribe(self.on_event)

    @property
    def status_text(self) -> str:
        return self.status_label.text()

    def on_event(self, event: ModuleEvent) -> None:
        name = event.name
        if event.kind == "status":
            self._status(event)
        elif name == "twin":
            self._show_twin()
        elif name == "desired_received":
            origin = " (caught up after a reconnect)" if event.data["origin"] == "catch-up" else ""
            prepend(
                self.desired,
                f"{clock(event.time)}  $version {event.data['version']}{origin}  "
                f"{compact(event.data['patch'])}",
            )
        elif name in ("reported_sent", "report_failed"):
            text = "sent" if name == "reported_sent" else f"failed: {event.data['reason']}"
            prepend(
                self.history,
                f"{clock(event.time)}  reported ({event.data['origin']}) {text}  "
                f"{compact(event.data['patch'])}",
            )
        self.methods.on_event(event)
        self.telemetry.on_event(event)
        if self.messages is not None:
            self.messages.on_event(event)
        self._update_counts()

    def _status(self, event: ModuleEvent) -> None:
        status = event.data.get("status", "")
        reason = event.data.get("reason", "")
        self._last_status = (status, reason)
        self.statusChanged.emit(self.module.identity, status)
        theme.text_colour(self.status_label, STATUS_COLOURS.get(status))
        self.status_label.setToolTip(f"{clock(event.time)}  {status}: {reason}")
        self._show_header()
        prepend(self.history, f"{clock(event.time)}  {status} — {reason}")

    def _show_header(self) -> None:
        """Connected: the twin's versions now (a status reason's version goes stale as
        patches arrive; the Status tab keeps each reason as it was said)."""
        status, reason = self._last_status
        if status == Status.CONNECTED:
            twin = self.module.twin
            desired = twin.get("desired", {}).get("$version", "—")
            reported = twin.get("reported", {}).get("$version", "—")
            text = f"Connected · desired $version {desired} · reported $version {reported}"
        else:
            text = f"{status.capitalize()}: {reason}"
        self.status_label.setText(text)

    def _show_twin(self) -> None:
        self.twin_view.setPlainText(pretty(self.module.twin))
        self._show_header()

    def _update_counts(self) -> None:
        c = self.module.counters
        self.counts.setText(
            f"Desired received {c.desired_received} · reported {c.reported_sent}"
            f"{f' ({c.reported_failed} failed)' if c.reported_failed else ''} · "
            f"methods answered {c.methods_answered} · telemetry sent {c.telemetry_sent}, "
            f"failed {c.telemetry_failed}"
        )

    def detach(self) -> None:
        """Stop listening to the module (before the panel goes away)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.tasks.cancel()
