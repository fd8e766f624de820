"""Narrowing the Events pane with a twin query, and a consumer group the hub does not
have: a person types a query and sees only the telemetry of the devices it matches; a
query the hub refuses is said under the field and the previous filter keeps working;
typing a group that does not exist and pressing Restart says how to create it."""

from __future__ import annotations

import logging
from pathlib import Path

from tests.ui.conftest import until
from tests.ui.journeys.test_events import open_events

LAB, OFFICE = "lab-sensor", "office-sensor"


async def _send_telemetry(info, ca: str, service, device: str, body: str) -> None:
    """Telemetry as the device itself: the unmodified device SDK over MQTT, through the
    hub's CONNECT proxy (the SDK always dials port 8883)."""
    from azure.iot.device import ProxyOptions
    from azure.iot.device.aio import IoTHubDeviceClient

    identity = await service.get_device(device)
    client = IoTHubDeviceClient.create_from_connection_string(
        service.connection_string(identity),
        server_verification_cert=ca,
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", info.proxy_port),
    )
    try:
        await client.connect()
        await client.send_message(body)
    finally:
        await client.shutdown()


def _identities(person, events) -> set[str]:
    texts = list(person.texts(events))
    return {name for name in (LAB, OFFICE) if name in texts}


def test_a_twin_query_shows_only_the_matching_devices_telemetry(person, qrun, caplog):
    caplog.set_level(logging.WARNING)
    from twin_explorer.service.hub import HubService

    info = person.window.session.local_info
    ca = Path(info.ca_cert).read_text()

    async def journey():
        events = await open_events(person)
        other = HubService(info.service_connection_string, ca_cert=info.ca_cert)
        try:
            for device in (LAB, OFFICE):
                await other.create_device(device)
            await other.patch_twin(LAB, None, {"tags": {"site": "lab"}}, None)
            await _send_telemetry(info, ca, other, LAB, '{"from":"lab"}')
            await _send_telemetry(info, ca, other, OFFICE, '{"from":"office"}')
        finally:
            await other.aclose()
        await until(lambda: _identities(person, events) == {LAB, OFFICE}, 15, "both devices")

        person.type_into("Twin query", "tags.site = 'lab'\n")
        await until(lambda: _identities(person, events) == {LAB}, 15, "only the lab's")
        assert person.sees("1 identity queried", within=events)
        assert person.sees('{"from":"lab"}', within=events)
        assert not person.sees('{"from":"office"}', within=events)

        # A query the hub refuses: said under the field, the lab's filter still on.
        person.type_into("Twin query", "tags.site = \n")
        await until(lambda: person.sees("The hub refused the query", within=events), 15, "")
        assert person.sees("The previous filter stays", within=events)
        assert _identities(person, events) == {LAB}

        # Emptied: every device's events again.
        person.type_into("Twin query", "")
        await until(lambda: _identities(person, events) == {LAB, OFFICE}, 15, "everyone")

    qrun(journey(), timeout=120)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def test_a_consumer_group_the_hub_does_not_have_says_how_to_create_it(person, qrun):
    async def journey():
        events = await open_events(person)
        person.type_into("Group", "dashboards")
        person.click("Restart", within=events)
        said = "The hub has no consumer group 'dashboards'"
        await until(lambda: person.sees(said, within=events), 10, "the missing group said")
        assert person.sees("twin-explorer hub consumer-groups add dashboards", within=events)
        assert person.sees("or choose $Default", within=events)

    qrun(journey(), timeout=90)
