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


def test_a_repaint_draws_every_cell_without_a_data_call_per_role(qtbot):
    """The list repaints twenty times a second while events pour in: its delegate takes
    each cell's text and colour from the record in one call, not one model ``data()``
    call per role (six or seven a cell, each from C++ into Python)."""
    stream = EventStream()
    widget = EventsWidget(stream)
    qtbot.addWidget(widget)
    widget.resize(900, 400)
    widget.show()
    stream.log.extend(
        [record(f"sensor-{i}", Source.TELEMETRY, b'{"t": %d}' % i) for i in range(30)]
        + [record("pump", Source.TWIN, b"{}")]
    )
    asked: list[int] = []
    plain = widget.model.data

    def counted(index, role=Qt.ItemDataRole.DisplayRole):
        asked.append(role)
        return plain(index, role)

    widget.model.data = counted  # what the view asks while it paints
    picture = widget.view.viewport().grab().toImage()
    assert not asked, f"{len(asked)} data() calls for one repaint"
    # What it drew: the rows' text, and the source column in its source's colour.
    assert shown(widget)[-1] == "pump"
    source_colour = widget.model.brushes[Source.TWIN].color()
    last = widget.view.visualRect(widget.model.index(30, 1))
    colours = {
        picture.pixelColor(x, y).rgb()
        for x in range(last.left(), last.right())
        for y in range(last.top(), last.bottom())
    }
    assert source_colour.rgb() in colours or _near(source_colour, colours)


def _near(colour, colours: set[int]) -> bool:
    """Antialiased text: some pixel close to the colour."""
    from PySide6.QtGui import QColor

    return any(
        abs(QColor(c).red() - colour.red())
        + abs(QColor(c).green() - colour.green())
        + abs(QColor(c).blue() - colour.blue())
        < 60
        for c in colours
    )
