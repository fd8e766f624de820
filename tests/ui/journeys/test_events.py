"""Watching the hub's event stream: the Events pane reads the demo local hub by itself;
a simulated module's telemetry shows up as a row, its details decode the body and list
the properties, the filter narrows the list, and reading again from the beginning shows
the hub's history (devices created, twins changed)."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt

from tests.ui.conftest import until

MODULE = "myFirstDevice/myFirstModule"


def test_telemetry_from_a_simulated_module_shows_in_events(person, qrun, caplog):
    caplog.set_level(logging.WARNING)
    tree = person.window.tree_view

    async def journey():
        person.tab("Events")
        events = person.pane("Events")
        await until(lambda: person.sees("Receiving new events", within=events), 30, "receiving")

        person.click_row(tree, "myFirstDevice")
        person.press(Qt.Key.Key_Right, to=tree)
        await person.wait_to_see("myFirstModule")
        person.click_row(tree, "myFirstModule")
        person.menu("Module", "Simulate")
        await until(lambda: _pane(person, "Simulated Modules"), 15, "the simulator pane")
        sims = person.pane("Simulated Modules")
        await until(lambda: person.sees("Connected", within=sims), 30, "the module connected")
        person.tab("Telemetry", within=sims)
        person.click("Send One", within=sims)
        await until(lambda: person.sees("Sent 1, failed 0", within=sims), 15, "sent")

        person.tab("Events")
        events = person.pane("Events")
        view = _view(events)

        def telemetry_row() -> bool:
            texts = list(person.texts(events))
            return "Telemetry" in texts and MODULE in texts and any('"count":1' in t for t in texts)

        await until(telemetry_row, 15, "the telemetry in Events")
        person.click_row(view, _time_of(view, MODULE, "Telemetry"))
        assert person.sees("iothub-connection-module-id: myFirstModule", within=events)
        assert person.sees('"count": 1', within=events)  # the body, pretty-printed

        # Plot the field: the chart shows a line for the module with its points, and
        # the next telemetry adds a point to it.
        person.type_into("Plot field", "count")
        person.click("Plot", within=events)
        line = f"{MODULE} · count"
        await until(lambda: _plotted(events).get(line) == [1.0], 10, "the chart's line")
        assert person.sees("1 field · 1 line · 1 point", within=events)
        person.tab("Simulated Modules")
        person.click("Send One", within=sims)
        await until(lambda: person.sees("Sent 2, failed 0", within=sims), 15, "sent again")
        person.tab("Events")
        await until(lambda: _plotted(events).get(line) == [1.0, 2.0], 10, "the second point")
        # A path that cannot name a field says so beside it, and keeps what was typed.
        person.tab("Details", within=events)
        person.type_into("Plot field", "count..x")
        person.click("Plot", within=events)
        assert person.sees("'count..x' is not a JSON path", within=events)

        # The filter narrows the list to what matches, wildcards and all.
        person.type_into("Device or device/module", "nobody-*")
        await until(lambda: MODULE not in list(person.texts(events)), 5, "the filter")
        person.type_into("Device or device/module", "*/myFirst*")
        await until(lambda: MODULE in list(person.texts(events)), 5, "the module again")

        # Read again from the beginning: the demo's devices as they were created.
        person.type_into("Device or device/module", "")
        person.choose("Start", "From the beginning")
        person.click("Restart", within=events)
        await until(lambda: person.sees("Receiving from the beginning", within=events), 30, "")
        await until(lambda: "Lifecycle" in list(person.texts(events)), 15, "lifecycle events")
        assert "Twin change" in list(person.texts(events))

    qrun(journey(), timeout=150)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def open_events(person):
    """The Events tab, once it reads the hub's new events: its pane."""
    person.tab("Events")
    events = person.pane("Events")
    await until(lambda: person.sees("Receiving new events", within=events), 30, "receiving")
    return events


def _pane(person, title: str) -> bool:
    try:
        person.pane(title)
    except AssertionError:
        return False
    return True


def _plotted(scope) -> dict[str, list[float]]:
    """What the visible chart draws: each line's name and its values."""
    import pyqtgraph as pg

    charts = [w for w in scope.findChildren(pg.PlotWidget) if w.isVisible()]
    if not charts:
        return {}
    return {
        item.name(): [
            float(y) for y in (item.getData()[1] if item.getData()[1] is not None else [])
        ]
        for item in charts[0].getPlotItem().listDataItems()
    }


def _view(scope):
    from PySide6.QtWidgets import QTableView

    return next(v for v in scope.findChildren(QTableView) if v.objectName() == "eventsView")


def _time_of(view, identity: str, source: str) -> str:
    """The time shown in the first row of this identity and source (what click_row finds)."""
    model = view.model()
    for row in range(model.rowCount()):
        cells = [model.index(row, c).data() for c in range(model.columnCount())]
        if cells[1] == source and cells[2] == identity:
            return cells[0]
    raise AssertionError(f"no {source} row of {identity}")


def test_a_device_made_by_another_client_appears_without_a_refresh(person, qrun):
    """Another service client (the app's HubService on the hub's owner string) creates
    a device; the hub's lifecycle event brings it into the tree, no Refresh pressed."""
    from twin_explorer.service.hub import HubService

    info = person.window.session.local_info
    tree = person.window.tree_view

    async def journey():
        await open_events(person)
        other = HubService(info.service_connection_string, ca_cert=info.ca_cert)
        try:
            await other.create_device("made-elsewhere")
        finally:
            await other.aclose()
        await until(lambda: person.sees("made-elsewhere", within=tree), 15, "the new device")

    qrun(journey(), timeout=90)
