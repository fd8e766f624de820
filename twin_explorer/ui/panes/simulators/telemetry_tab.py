"""Telemetry: send one message or a stream from a JSON template; each message is listed
(newest first, bounded) with its properties and content type, and counted."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.simulator import ModuleEvent, SimulatedModule, SimulatorError, TelemetryTemplate
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.simulators.common import (
    LIST_LIMIT,
    error_label,
    json_editor,
    parse_json,
    side_by_side,
)
from twin_explorer.ui.panes.simulators.telemetry_list import (
    MessageListModel,
    SentMessage,
    message_table,
)

DEFAULT_TEMPLATE = (
    '{\n  "temperature": "{{random:18.0:26.0}}",\n  "humidity": "{{random:30:60}}",\n'
    '  "count": "{{counter}}",\n  "time": "{{time}}"\n}'
)
HELP = (
    "Placeholders in strings: {{counter}}, {{time}}, {{random:MIN:MAX}} "
    "(whole numbers unless a bound has a decimal point)."
)


class TelemetryTab(QWidget):
    def __init__(self, module: SimulatedModule, tasks: Tasks, parent: QWidget | None = None):
        super().__init__(parent)
        self.module = module
        self._tasks = tasks
        self._counter = 0

        self.template = json_editor("simTelemetryTemplate", DEFAULT_TEMPLATE)
        self.template.setToolTip("The body of each message: JSON, with placeholders")
        self.properties = json_editor("simTelemetryProperties", "{}")
        self.properties.setToolTip('Application properties: {"name": "text"}, placeholders too')
        self.properties.setMaximumHeight(70)
        self.interval = QDoubleSpinBox()
        self.interval.setObjectName("simTelemetryInterval")
        self.interval.setRange(0.1, 3600.0)
        self.interval.setValue(1.0)
        self.interval.setSuffix(" s")
        self.interval.setToolTip("Time between messages of a stream")
        self.problem = error_label("simTelemetryError")
        self.counts = QLabel()
        self.counts.setObjectName("simTelemetryCounts")
        self.send_button = QPushButton("Send One")
        self.send_button.setObjectName("simTelemetrySend")
        self.send_button.setToolTip("Send one message from the template now")
        self.send_button.clicked.connect(self.send_one)
        self.stream_button = QPushButton("Start Stream")
        self.stream_button.setObjectName("simTelemetryStream")
        self.stream_button.setToolTip("Send a message from the template every interval")
        self.stream_button.clicked.connect(self.toggle_stream)
        self.messages = MessageListModel(LIST_LIMIT, self)
        self.message_view = message_table(self.messages)

        form = QFormLayout()
        form.addRow("Message template (JSON):", self.template)
        form.addRow("", QLabel(HELP))
        form.addRow("Message properties:", self.properties)
        form.addRow("Interval:", self.interval)
        buttons = QHBoxLayout()
        buttons.addWidget(self.counts, 1)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stream_button)
        compose = QWidget()
        top = QVBoxLayout(compose)
        top.setContentsMargins(0, 0, 0, 0)
        top.addLayout(form, 1)
        top.addWidget(self.problem)
        top.addLayout(buttons)
        sent = QWidget()
        bottom = QVBoxLayout(sent)
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(QLabel(f"Messages sent (newest first, the last {LIST_LIMIT:,} kept):"))
        bottom.addWidget(self.message_view, 1)
        split = side_by_side("simTelemetrySplit", compose, sent, (2, 3))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self.template.textChanged.connect(self.parsed)
        self.properties.textChanged.connect(self.parsed)
        self.update_counts()

    def parsed(self) -> TelemetryTemplate | None:
        """The template as typed, or None with the problem shown."""
        properties, problem = parse_json(self.properties.toPlainText(), "The properties")
        template = None
        if not problem and not isinstance(properties, dict | None):
            problem = "Message properties are a JSON object of names and text values."
        if not problem:
            try:
                template = TelemetryTemplate.parse(self.template.toPlainText(), properties or {})
            except SimulatorError as error:
                problem = error.text
        self.problem.setText(problem)
        return template

    def send_one(self) -> None:
        template = self.parsed()
        if template is None:
            return
        self._counter += 1
        message = template.render(self._counter)
        self._tasks.spawn(self.module.send_telemetry(message.body, message.properties))

    def toggle_stream(self) -> None:
        if self.module.telemetry_running:
            self.module.stop_telemetry()
        else:
            template = self.parsed()
            if template is None:
                return
            self.module.start_telemetry(template, self.interval.value())
        self.update_counts()

    def on_event(self, event: ModuleEvent) -> None:
        if event.name in ("telemetry_sent", "telemetry_failed"):
            self.messages.add(SentMessage.from_event(event))
        if event.name in ("telemetry_sent", "telemetry_failed", "closed"):
            self.update_counts()

    def update_counts(self) -> None:
        counters = self.module.counters
        self.counts.setText(f"Sent {counters.telemetry_sent}, failed {counters.telemetry_failed}")
        running = self.module.telemetry_running
        self.stream_button.setText("Stop Stream" if running else "Start Stream")
