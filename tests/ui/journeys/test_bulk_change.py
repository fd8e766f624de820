"""Bulk change: a person selects two thermostats in the tree, writes one change, previews
what it does to each, applies it, and sees the results and the patch log's entries."""

from __future__ import annotations

import asyncio

from tests.hubfixtures import trusting_registry_manager
from tests.ui.conftest import until

CHANGE = '{"tags": {"building": "B7"},\n"properties": {"desired": {"telemetryInterval": 15}}}'


def test_change_two_selected_twins_with_a_preview(person, qrun):
    window = person.window

    async def journey():
        tree = window.tree_view
        person.click_row(tree, "thermostat-floor3")
        person.click_row(tree, "thermostat-lobby", add=True)
        person.menu("Twin", "Change Many Twins…")
        await person.wait_to_see("The 2 twins selected in the tree")
        bulk = person.window_titled("Change Many Twins")

        person.type_into("Change", '{"tags": {"building": }}')
        person.click("Preview", within=bulk)
        await person.wait_to_see("Line 1, column")  # told where, nothing read or sent
        person.type_into("Change", CHANGE)
        person.click("Preview", within=bulk)
        await person.wait_to_see("2 twins previewed; nothing written yet.")
        assert person.sees('tags.building = "B7", desired.telemetryInterval = 15', within=bulk)
        assert person.sees("2 change", within=bulk)
        person.click_row(bulk.table, "thermostat-lobby")
        await person.wait_to_see('+      "telemetryInterval": 15')
        assert person.sees('-      "telemetryInterval": 30')

        person.click("Apply to 2 Twins", within=bulk)
        await person.wait_to_see("2 applied")
        assert person.sees("applied", within=bulk)
        assert not person.button("Apply", within=bulk).isEnabled()

        # The writes are in the patch log, as sent by this run.
        person.tab("Patch Log")
        log = person.pane("Patch Log")
        await until(
            lambda: sum('"building":"B7"' in t for t in person.texts(log)) >= 2,
            15, "both bulk writes in the patch log",
        )  # fmt: skip

        info = window.session.local_info
        registry = trusting_registry_manager(info.service_connection_string, info.ca_cert)
        twin = await asyncio.to_thread(registry.get_twin, "thermostat-lobby")
        assert twin.tags["building"] == "B7"
        assert twin.properties.desired["telemetryInterval"] == 15

    qrun(journey(), timeout=90)


def test_change_two_selected_twins_as_an_iot_hub_job(person, qrun):
    window = person.window

    async def journey():
        person.click_row(window.tree_view, "thermostat-floor3")
        person.click_row(window.tree_view, "thermostat-lobby", add=True)
        person.menu("Twin", "Change Many Twins…")
        await person.wait_to_see("The 2 twins selected in the tree")
        bulk = person.window_titled("Change Many Twins")
        person.type_into("Change", '{"tags": {"wing": "east"}}')

        person.click("Run as an IoT Hub job instead (very large sets of devices)", within=bulk)
        assert person.sees("no per-twin etag", within=bulk)  # said before anything is sent
        assert not person.button("Cancel Job", within=bulk).isEnabled()
        person.click("Start Job", within=bulk)
        await person.wait_to_see("completed, 2 devices: 2 succeeded, 0 failed", within=20)
        assert not person.button("Cancel Job", within=bulk).isEnabled()

        info = window.session.local_info
        registry = trusting_registry_manager(info.service_connection_string, info.ca_cert)
        for device_id in ("thermostat-floor3", "thermostat-lobby"):
            twin = await asyncio.to_thread(registry.get_twin, device_id)
            assert twin.tags["wing"] == "east"

    qrun(journey(), timeout=90)
