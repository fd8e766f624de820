"""The Events pane's body: filter, twin query and source toggles, consumer group and start choice,
Restart/Pause/Clear/Record, the list of events, the selected event's details and a
status line (receiving or why not, and the counts).

Rows arrive in batches from the stream (one insertion per batch); the list follows the
newest row unless the person scrolled up to read."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC

from PySide6.QtCore import QDateTime, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.events.consumer import StartAt, State, Status, StreamError
from twin_explorer.service.events.filter import EventFilter
from twin_explorer.service.events.query import QueryError
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.events.routes import ROUTE_DETAILS
from twin_explorer.service.events.series import PathError, Plots, numeric_paths
from twin_explorer.service.events.stream import CONNECTING, EventStream
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.log_table import log_view
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.common.tool_button import tool_button
from twin_explorer.ui.panes.events.chart import ChartWidget
from twin_explorer.ui.panes.events.delegate import EventCellDelegate
from twin_explorer.ui.panes.events.details import details_text
from twin_explorer.ui.panes.events.model import (
    IDENTITY,
    SOURCE,
    SOURCE_NAMES,
    TIME,
    EventsModel,
)

FILTER_DELAY_MS = 150
# An emptied query field ends the query after this pause (not at once: replacing the
# text passes through empty).
QUERY_CLEAR_DELAY_MS = 600
COLUMN_WIDTHS = {TIME: 96, SOURCE: 96, IDENTITY: 200}
START_CHOICES = {
    StartAt.NOW: "New events",
    StartAt.BEGINNING: "From the beginning",
    StartAt.TIME: "From a time",
}
STATE_COLOURS = {State.RECEIVING: "ok", State.FAILED: "error"}


class EventsWidget(QWidget):
    errorOccurred = Signal(object)

    def __init__(self, stream: EventStream, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventsWidget")
        self.stream = stream
        self.model = EventsModel(stream.log, parent=self)
        self._tasks = Tasks(on_error=self.errorOccurred.emit)
        self._follow = True

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("eventsIdentityFilter")
        self.filter_edit.setPlaceholderText("Device or device/module (wildcards)…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip(
            "Show only events of these identities: sensor-* or */thermo or sensor-1/therm?"
        )
        self.query_edit = QLineEdit()
        self.query_edit.setObjectName("eventsTwinQuery")
        self.query_edit.setPlaceholderText("Twin query, e.g. tags.site = 'lab' (Enter)")
        self.query_edit.setClearButtonEnabled(True)
        self.query_edit.setToolTip(
            "Show only events of the devices and modules a twin query matches: a condition "
            "(tags.site = 'lab') or a whole query (SELECT * FROM devices.modules WHERE …). "
            "Enter runs it on the hub; it is read again as twins change and every minute."
        )
        self.query_edit.returnPressed.connect(self.apply_query)
        self.query_edit.textChanged.connect(self._query_typed)
        self.query_error = QLabel()
        self.query_error.setObjectName("eventsQueryError")
        self.query_error.setWordWrap(True)
        self.query_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.query_error.setVisible(False)
        theme.text_colour(self.query_error, "error")
        # Check boxes rather than toggle buttons: on and off read plainly in any theme.
        self.source_buttons: dict[Source, QCheckBox] = {}
        for source in Source:
            button = QCheckBox(SOURCE_NAMES[source])
            button.setObjectName(f"eventsShow_{source.value}")
            button.setToolTip(f"Show {SOURCE_NAMES[source].lower()} events")
            button.setChecked(True)
            button.toggled.connect(self._apply_filter)
            self.source_buttons[source] = button
        self.group_edit = QLineEdit(stream.group)
        self.group_edit.setObjectName("eventsConsumerGroup")
        self.group_edit.setPlaceholderText("Consumer group")
        self.group_edit.setToolTip(
            "The consumer group to read with ($Default unless another app reads it too); "
            "Restart to use it"
        )
        self.group_edit.setMaximumWidth(140)
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("eventsStart")
        self.start_combo.setToolTip("Where reading starts when you Restart")
        for start, text in START_CHOICES.items():
            self.start_combo.addItem(text, start)
        self.start_time = QDateTimeEdit(QDateTime.currentDateTimeUtc().addSecs(-600))
        self.start_time.setObjectName("eventsStartTime")
        self.start_time.setDisplayFormat("yyyy-MM-dd HH:mm:ss 'UTC'")
        self.start_time.setCalendarPopup(True)
        self.start_time.setToolTip("Read the events the hub enqueued from this time (UTC) on")
        self.start_time.setVisible(False)
        self.start_combo.currentIndexChanged.connect(
            lambda _i: self.start_time.setVisible(self.start_choice() is StartAt.TIME)
        )
        self.restart_button = tool_button(
            "eventsRestart", "Restart", "Read again with this consumer group and start"
        )
        self.restart_button.clicked.connect(self.restart)
        self.pause_button = tool_button(
            "eventsPause", "Pause", "Stop adding rows; Resume shows what came meanwhile"
        )
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.clear_button = tool_button("eventsClear", "Clear", "Remove every event listed")
        self.clear_button.clicked.connect(self.clear)
        self.record_button = tool_button(
            "eventsRecord", "Record…", "Write every event that arrives to a JSON Lines file"
        )
        self.record_button.setCheckable(True)
        self.record_button.clicked.connect(self._record_clicked)

        self.view = log_view("eventsView", self.model, self)
        self.view.setItemDelegate(EventCellDelegate(self.model, self.view))
        for column, width in COLUMN_WIDTHS.items():
            self.view.setColumnWidth(column, width)
        self.details = QPlainTextEdit()
        self.details.setObjectName("eventDetails")
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setPlaceholderText("Choose an event to see its body and properties")
        self.details.setToolTip("The chosen event: body, application and system properties")
        # Plot a numeric field of the chosen event: every device/module's values of it.
        self.plots = Plots(stream)
        self.plot_path = QComboBox()
        self.plot_path.setObjectName("eventsPlotPath")
        self.plot_path.setEditable(True)
        self.plot_path.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.plot_path.lineEdit().setPlaceholderText("JSON path, e.g. temperature")
        self.plot_path.setToolTip(
            "A numeric field of the telemetry to chart: pick one of the chosen event's "
            "or type a path (engine.rpm, values[0])"
        )
        self.plot_path.setMinimumWidth(100)
        self.plot_button = QPushButton("Plot")
        self.plot_button.setObjectName("eventsPlotButton")
        self.plot_button.setToolTip("Chart this field over time, one line per device/module")
        self.plot_button.clicked.connect(self.plot_field)
        self.plot_path.lineEdit().returnPressed.connect(self.plot_field)
        self.plot_error = QLabel()
        self.plot_error.setObjectName("eventsPlotError")
        self.plot_error.setWordWrap(True)
        self.plot_error.setVisible(False)
        theme.text_colour(self.plot_error, "error")
        self.plot_path.editTextChanged.connect(lambda _t: self.plot_error.setVisible(False))
        self.chart = ChartWidget(self.plots)
        details_page = QWidget()
        details_layout = QVBoxLayout(details_page)
        details_layout.setContentsMargins(0, 0, 0, 0)
        details_layout.addWidget(self.details, 1)
        plot_row = QHBoxLayout()
        plot_row.setContentsMargins(0, 0, 0, 0)
        plot_label = QLabel("Plot field:")
        plot_label.setBuddy(self.plot_path)
        plot_row.addWidget(plot_label)
        plot_row.addWidget(self.plot_path, 1)
        plot_row.addWidget(self.plot_button)
        details_layout.addLayout(plot_row)
        details_layout.addWidget(self.plot_error)
        self.side = QTabWidget()
        self.side.setObjectName("eventsSide")
        self.side.addTab(details_page, "Details")
        self.side.addTab(self.chart, "Chart")
        self.side.setTabToolTip(0, "The chosen event: body and properties")
        self.side.setTabToolTip(1, "Numeric fields of the telemetry over time")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("eventsSplitter")
        self.splitter.setChildrenCollapsible(False)
        # Explicit minimums (not the children's hints): the pane shares its dock area with
        # the patch log, and must not make the window taller than a small screen allows.
        self.view.setMinimumSize(160, 60)
        self.side.setMinimumSize(120, 60)
        self.filter_edit.setMinimumWidth(120)
        self.query_edit.setMinimumWidth(120)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        self.status = QLabel()
        self.status.setObjectName("eventsStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.routes_hint = QLabel()
        self.routes_hint.setObjectName("eventsRoutesHint")
        self.routes_hint.setWordWrap(True)
        self.routes_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.routes_hint.setToolTip(ROUTE_DETAILS)
        self.routes_hint.setVisible(False)
        theme.text_colour(self.routes_hint, "warning")
        self.counts = QLabel()
        self.counts.setObjectName("eventsCounts")
        self.counts.setToolTip("Events listed, events kept, held while paused, and dropped")

        # Two rows, so the pane never makes the window wider than a small screen.
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.query_edit, 1)
        for button in self.source_buttons.values():
            filters.addWidget(button)
        reading = QHBoxLayout()
        reading.setContentsMargins(0, 0, 0, 0)
        group_label = QLabel("Group:")
        group_label.setBuddy(self.group_edit)
        reading.addWidget(group_label)
        reading.addWidget(self.group_edit)
        start_label = QLabel("Start:")
        start_label.setBuddy(self.start_combo)
        reading.addWidget(start_label)
        reading.addWidget(self.start_combo)
        reading.addWidget(self.start_time)
        reading.addStretch(1)
        for button in (
            self.restart_button,
            self.pause_button,
            self.clear_button,
            self.record_button,
        ):
            reading.addWidget(button)
        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.addWidget(self.status, 1)
        footer.addWidget(self.counts)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.query_error)
        layout.addLayout(reading)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.routes_hint)
        layout.addLayout(footer)

        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self._query_clear_timer = QTimer(self)
        self._query_clear_timer.setSingleShot(True)
        self._query_clear_timer.setInterval(QUERY_CLEAR_DELAY_MS)
        self._query_clear_timer.timeout.connect(self._query_emptied)
        scroll = self.view.verticalScrollBar()
        scroll.valueChanged.connect(self._scrolled)
        scroll.rangeChanged.connect(self._range_changed)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        # A new filter or Clear: the event shown may no longer be listed.
        self.model.modelReset.connect(self.details.clear)
        self._unsubscribe = [
            stream.status.subscribe(self._status_changed),
            stream.batches.subscribe(self._batch_shown),
            stream.query.changed.subscribe(lambda _ids: self._update_counts()),
        ]
        self._unsubscribe.append(self.plots.close)
        self.destroyed.connect(lambda: [u() for u in self._unsubscribe])
        theme.on_change(self, lambda: self._status_changed(self.stream.status.value))
        self._status_changed(stream.status.value)
        self._update_counts()

    # -- reading -------------------------------------------------------------------------

    def start_choice(self) -> StartAt:
        return self.start_combo.currentData()

    def restart(self) -> None:
        """Read again with the group and start chosen (what Restart does)."""
        self.stream.group = self.group_edit.text().strip() or "$Default"
        self.stream.start_at = self.start_choice()
        self.stream.start_time = self.start_time.dateTime().toPython().replace(tzinfo=UTC)
        self.stream.status.set(CONNECTING)  # at once: what shows until then is not yet read
        self._tasks.spawn(self._restart(), name="restart events")

    async def _restart(self) -> None:
        with contextlib.suppress(StreamError):  # the status line says why
            await self.stream.start()

    def set_paused(self, paused: bool) -> None:
        self.stream.flush()
        if paused:
            self.stream.log.pause()
        else:
            self.stream.log.resume()
        self.pause_button.setText("Resume" if paused else "Pause")
        self._update_counts()

    def clear(self) -> None:
        self.stream.flush()
        self.stream.log.clear()
        self.details.clear()
        self._update_counts()

    def record_to(self, path: str | None) -> None:
        """Record to ``path`` (JSON Lines) from now on; None stops recording."""
        self.stream.record_to(path)
        self.record_button.setChecked(path is not None)
        self.record_button.setText("Stop Recording" if path else "Record…")
        self._update_counts()

    def _record_clicked(self) -> None:
        if self.stream.recorder is not None:
            self.record_to(None)
            return
        self.record_button.setChecked(False)
        dialog = QFileDialog(self, "Record Events", "", "JSON Lines (*.jsonl)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("jsonl")
        dialog.fileSelected.connect(self.record_to)
        dialog.open()

    # -- filter --------------------------------------------------------------------------

    def current_filter(self) -> EventFilter:
        sources = frozenset(s for s, b in self.source_buttons.items() if b.isChecked())
        return EventFilter(self.filter_edit.text(), sources, self.stream.query.ids)

    def apply_query(self) -> None:
        """Run the twin query typed (what Enter does); a refusal is said under it."""
        self._tasks.spawn(self._apply_query(self.query_edit.text()), name="twin query")

    async def _apply_query(self, text: str) -> None:
        try:
            await self.stream.query.apply(text)
        except QueryError as error:
            self.query_error.setText(f"{error} The previous filter stays.")
            self.query_error.setVisible(True)
            return
        self.query_error.setVisible(False)

    def _query_typed(self, text: str) -> None:
        if not text.strip():
            self.query_error.setVisible(False)
            self._query_clear_timer.start()

    def _query_emptied(self) -> None:
        """The field stayed empty (or its clear button was pressed): no query any more."""
        if not self.query_edit.text().strip() and self.stream.query.text:
            self.apply_query()

    def _apply_filter(self) -> None:
        self.stream.flush()
        self.stream.log.set_filter(self.current_filter())
        self._update_counts()

    # -- what it shows -------------------------------------------------------------------

    def _status_changed(self, status: Status) -> None:
        self.status.setText(status.text)
        self.status.setToolTip(status.text)
        theme.text_colour(self.status, STATE_COLOURS.get(status.state))

    def _batch_shown(self, _batch: list[EventRecord]) -> None:
        self._update_counts()
        if self._follow:
            self.view.scrollToBottom()

    def _update_counts(self) -> None:
        log = self.stream.log
        parts = [f"{len(log):,} shown", f"{log.total:,} kept"]
        if self.stream.query.ids is not None:
            parts.append(_count(len(self.stream.query.ids), "identity", "identities") + " queried")
        if log.paused:
            parts.append(f"{log.held:,} held while paused")
        if self.stream.dropped:
            parts.append(f"{self.stream.dropped:,} dropped (oldest)")
        if self.stream.recorder is not None:
            parts.append(f"recording {self.stream.recorder.path.name}")
        self.counts.setText(" · ".join(parts))
        receiving = self.stream.status.value.state is State.RECEIVING
        wanted = [s for s, b in self.source_buttons.items() if b.isChecked()]
        hint = self.stream.sources_seen.hint(wanted, time.monotonic()) if receiving else None
        if hint != (self.routes_hint.text() if self.routes_hint.isVisible() else None):
            self.routes_hint.setText(hint or "")
            self.routes_hint.setVisible(hint is not None)
        wants_notes = Source.TELEMETRY not in wanted
        if wants_notes and not len(log) and receiving:
            self.view.setToolTip(ROUTE_DETAILS)
            self.details.setPlaceholderText(ROUTE_DETAILS)
        else:
            self.view.setToolTip("")
            self.details.setPlaceholderText("Choose an event to see its body and properties")

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            record = self.model.record_at(current.row())
            self.details.setPlainText(details_text(record))
            typed = self.plot_path.currentText()
            self.plot_path.clear()
            paths = numeric_paths(record.json()) if record.source is Source.TELEMETRY else []
            self.plot_path.addItems(paths)
            self.plot_path.setEditText(typed if typed in paths or not paths else paths[0])

    # -- chart ---------------------------------------------------------------------------

    def plot_field(self) -> None:
        """Chart the field typed or picked (what Plot does); a bad path says why."""
        try:
            self.plots.plot(self.plot_path.currentText())
        except PathError as exc:
            self.plot_error.setText(str(exc))
            self.plot_error.setVisible(True)
            return
        self.side.setCurrentWidget(self.chart)

    def _scrolled(self, value: int) -> None:
        self._follow = value >= self.view.verticalScrollBar().maximum() - 2

    def _range_changed(self, _low: int, high: int) -> None:
        if self._follow:
            self.view.verticalScrollBar().setValue(high)

    async def aclose(self) -> None:
        await self._tasks.cancel_all()


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"
