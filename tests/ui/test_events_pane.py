"""The Events pane's widget over a real event log: details follow the chosen row and go
when a filter hides it; the source check boxes hide their events."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.events.stream import EventStream
from twin_explorer.ui.panes.events import EventsWidget


def record(device: str, source: Source, body: bytes) -> EventRecord:
    return EventRecord(datetime.now(UTC), source, device, None, body, {"k": "v"}, {"a": "b"})


def shown(widget: EventsWidget) -> list[str]:
    model = widget.model
    return [model.index(r, 2).data() for r in range(model.rowCount())]


def test_details_follow_the_row_and_go_when_a_filter_hides_it(qtbot):
    stream = EventStream()
    widget = EventsWidget(stream)
    qtbot.addWidget(widget)
    widget.show()
    stream.log.extend(
        [record("sensor-1", Source.TELEMETRY, b'{"t": 1}'), record("pump", Source.TWIN, b"{}")]
    )
    widget.view.selectRow(0)
    assert '"t": 1' in widget.details.toPlainText()
    assert "a: b" in widget.details.toPlainText()  # application properties
    QTest.keyClicks(widget.filter_edit, "pump")
    qtbot.waitUntil(lambda: shown(widget) == ["pump"])
    assert widget.details.toPlainText() == ""


def test_unchecking_a_source_hides_its_events(qtbot):
    stream = EventStream()
    widget = EventsWidget(stream)
    qtbot.addWidget(widget)
    widget.show()
    stream.log.extend(
        [record("sensor-1", Source.TELEMETRY, b"1"), record("pump", Source.LIFECYCLE, b"")]
    )
    box = widget.source_buttons[Source.TELEMETRY]
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=box.rect().center())
    qtbot.waitUntil(lambda: shown(widget) == ["pump"])
    assert not box.isChecked()
