"""Looking around a hub: Refresh keeps one's place, a bad query is explained where it was
typed, and a deleted device's twin leaves the twin pane."""

from __future__ import annotations

import asyncio
import re
import time

from azure.iot.hub.models import Device
from PySide6.QtCore import Qt

from tests.hubfixtures import trusting_registry_manager
from tests.ui.conftest import until


def _count(person) -> int:
    """The device count the status bar shows."""
    status = person.window.hub_status.text()
    match = re.search(r"([\d,]+) devices?", status)
    assert match, status
    return int(match.group(1).replace(",", ""))


def test_refresh_keeps_the_place_and_a_delete_empties_the_twin_pane(person, qrun):
    window = person.window
    tree = window.tree_view

    async def journey():
        person.click_row(tree, "myFirstDevice")
        person.press(Qt.Key.Key_Right, to=tree)
        await person.wait_to_see("myFirstModule")
        person.click_row(tree, "myFirstModule")
        await person.wait_to_see('"moduleId": "myFirstModule"')
        await until(lambda: re.search(r"\d devices", window.hub_status.text()), what="count")
        before = _count(person)

        # Someone else adds a device; Refresh shows it and keeps everything else.
        info = window.session.local_info
        registry = trusting_registry_manager(info.service_connection_string, info.ca_cert)
        newcomer = Device(device_id="newcomer", status="enabled")
        await asyncio.to_thread(
            registry.protocol.devices.create_or_update_identity, "newcomer", newcomer
        )
        person.click("Refresh")
        await person.wait_to_see("newcomer")
        assert person.highlighted(tree) == ["myFirstModule"]  # still selected, still open
        assert person.sees('"moduleId": "myFirstModule"')  # the twin pane kept it
        await until(lambda: _count(person) == before + 1, what="the count with newcomer")

        # Delete it through the Hub menu: its twin leaves the twin pane.
        person.click_row(tree, "newcomer")
        await person.wait_to_see('"deviceId": "newcomer"')
        person.menu("Hub", "Delete")
        person.click("Delete")  # in the confirmation
        await person.wait_to_see("newcomer was deleted from the hub")
        assert not person.sees('"deviceId": "newcomer"')
        for action in ("Reload Twin", "Replace Twin", "Save Twin"):
            assert not person.button(action).isEnabled(), action
        await until(lambda: _count(person) == before, what="the count without newcomer")
        await until(lambda: "newcomer" not in _rows(tree), what="the row gone")
        # The tree moved nowhere by itself: the pane still says what happened.
        assert person.highlighted(tree) == []
        assert person.sees("newcomer was deleted from the hub")

    qrun(journey())


def _rows(tree) -> list[str]:
    model = tree.model()
    return [model.index(r, 0).data() for r in range(model.rowCount())]


def test_a_bad_query_is_explained_at_the_query_box_and_clearing_it_restores_the_list(person, qrun):
    window = person.window

    async def journey():
        started = time.monotonic()
        field = person.type_into("Query", "SELECT * FROM devices WHERE")
        person.press(Qt.Key.Key_Return, to=field)
        await person.wait_to_see("The hub did not run this query", within=5)
        assert time.monotonic() - started < 5  # at once, not after retries
        assert person.sees("column 28")  # where the hub says it went wrong
        await until(lambda: not person.sees("Loading…"), within=2, what="loading ended")
        assert not window.tree_pane.busy.isVisible()

        person.type_into("Query", "")  # cleared
        await person.wait_to_see("myFirstDevice")
        assert not person.sees("The hub did not run this query")

        # The example the query box offers finds demo devices.
        example = field.placeholderText().split("e.g. ", 1)[1]
        person.type_into("Query", example)
        person.press(Qt.Key.Key_Return, to=field)
        await person.wait_to_see("thermostat-lobby")
        assert not person.sees("myFirstDevice")

    qrun(journey())
