"""The Events view filtered by a twin query, run on the real local hub through the service
SDK: only the matching identities' events show, the set follows twin changes, a query
the hub refuses is said in plain words and the previous one keeps working; and a
consumer group the hub does not have is said within seconds of Start."""

from __future__ import annotations

import json
import time

import pytest

from tests.hubfixtures import service_for
from tests.localhub.amqp.support import amqp_hub
from tests.service.events.test_event_log import record
from tests.service.events.test_event_stream import endpoint, send, until
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.events.consumer import State
from twin_explorer.service.events.filter import EventFilter
from twin_explorer.service.events.query import QueryError, identities, query_text
from twin_explorer.service.events.record import Source
from twin_explorer.service.events.stream import EventStream

__all__ = ["amqp_hub"]


def test_a_bare_condition_is_a_query_on_device_twins():
    assert query_text("tags.site = 'lab'") == "SELECT * FROM devices WHERE tags.site = 'lab'"
    assert query_text(" where tags.x > 1 ") == "SELECT * FROM devices WHERE tags.x > 1"
    whole = "SELECT * FROM devices.modules WHERE moduleId = 'ctl'"
    assert query_text(whole) == whole
    assert query_text("  ") == ""


def test_module_twins_name_their_module():
    items = [{"deviceId": "d"}, {"deviceId": "d", "moduleId": "m"}, {"count": 3}]
    assert identities(items) == {"d", "d/m"}


def test_a_device_lets_its_modules_through_and_the_filters_compose():
    by_query = EventFilter(ids=frozenset({"lab-1", "pump/ctl"}))
    assert by_query.matches(record("lab-1"))
    assert by_query.matches(record("lab-1", "any"))
    assert by_query.matches(record("pump", "ctl"))
    assert not by_query.matches(record("pump"))
    assert not by_query.matches(record("other"))
    both = EventFilter("lab-*", frozenset({Source.TELEMETRY}), frozenset({"lab-1", "x"}))
    assert both.matches(record("lab-1")) and not both.matches(record("x"))
    assert not EventFilter(ids=frozenset()).matches(record("lab-1"))
    assert not by_query.is_empty and EventFilter().is_empty


def shown(stream: EventStream) -> set[str]:
    return {r.identity for r in stream.log.visible() if r.source is Source.TELEMETRY}


async def test_only_the_matching_identities_show_and_the_set_follows_the_hub(
    amqp_hub: HubServer,
):
    hub = amqp_hub
    service = service_for(hub)
    stream = EventStream(lambda: endpoint(hub), service_for=lambda: service)
    stream.query.debounce_seconds = 0.2
    try:
        for device in ("lab-1", "lab-2", "office-1"):
            await service.create_device(device)
        await service.create_module("office-1", "ctl")
        await service.patch_twin("lab-1", None, {"tags": {"site": "lab"}}, None)
        await service.patch_twin("lab-2", None, {"tags": {"site": "lab"}}, None)
        await stream.start()
        await until(lambda: hub.core.eventhub.reader_count() >= 1)

        await stream.query.apply("tags.site = 'lab'")
        assert stream.query.ids == {"lab-1", "lab-2"}
        for device, module in (("lab-1", None), ("office-1", None), ("office-1", "ctl")):
            send(hub, device, module, json.dumps({"n": 1}).encode())
        send(hub, "lab-2", None, b"last")
        # Partitions are read side by side: wait for all four, in whatever order.
        await until(lambda: stream.log.total >= 4)  # the others are kept, only not shown
        assert shown(stream) == {"lab-1", "lab-2"}

        # office-1 joins the lab: its twin change brings a read of the query, and its
        # events kept meanwhile show.
        await service.patch_twin("office-1", None, {"tags": {"site": "lab"}}, None)
        await until(lambda: "office-1" in shown(stream))
        assert "office-1/ctl" in shown(stream)  # a device's modules come with it

        # Module twins, by a whole query.
        await stream.query.apply("SELECT * FROM devices.modules WHERE moduleId = 'ctl'")
        assert shown(stream) == {"office-1/ctl"}

        # A query the hub refuses: said in plain words, the previous filter stays.
        with pytest.raises(QueryError) as refused:
            await stream.query.apply("tags.site = ")
        text = str(refused.value)
        assert text.startswith("The hub refused the query: Invalid query")
        assert "SharedAccessKey" not in text and "localhost" not in text
        assert shown(stream) == {"office-1/ctl"}

        await stream.query.apply("")  # no query: everyone again
        assert stream.query.ids is None
        assert shown(stream) == {"lab-1", "lab-2", "office-1", "office-1/ctl"}
    finally:
        await stream.aclose()
        await service.aclose()


async def test_the_query_is_read_again_every_period(amqp_hub: HubServer):
    """No event says so (routes left out), yet a twin that starts matching joins."""
    hub = amqp_hub
    service = service_for(hub)
    stream = EventStream(lambda: endpoint(hub), service_for=lambda: service)
    stream.query.refresh_seconds = 0.3
    try:
        await service.create_device("quiet")
        await stream.query.apply("tags.site = 'lab'")
        assert stream.query.ids == frozenset()
        reads = stream.query.reads
        await service.patch_twin("quiet", None, {"tags": {"site": "lab"}}, None)
        await until(lambda: stream.query.ids == {"quiet"})
        assert stream.query.reads > reads
    finally:
        await stream.aclose()
        await service.aclose()


async def test_no_hub_no_query():
    stream = EventStream()
    with pytest.raises(QueryError, match="connect to one"):
        await stream.query.apply("tags.site = 'lab'")
    await stream.aclose()


async def test_a_missing_consumer_group_is_said_within_seconds(amqp_hub: HubServer):
    """The hub refuses the partition links (amqp:not-found, its reason on the detach);
    the client stops retrying and the status says what to do."""
    hub = amqp_hub
    stream = EventStream(lambda: endpoint(hub))
    stream.group = "nosuch"
    started = time.monotonic()
    await stream.start()
    try:
        await until(lambda: stream.status.value.state is State.FAILED, 15)
    finally:
        await stream.aclose()
    assert time.monotonic() - started < 10
    text = stream.status.value.text
    assert "The hub has no consumer group 'nosuch'" in text
    assert "twin-explorer hub consumer-groups add nosuch" in text and "$Default" in text
    assert hub.core.eventhub.reader_count() == 0


async def test_a_hub_routing_only_telemetry_gets_the_hint_to_add_routes(amqp_hub: HubServer):
    """The local hub started with --routes telemetry: devices come and twins change, yet
    only telemetry arrives; after the quiet spell the stream says how to add routes."""
    from twin_explorer.service.events.routes import ROUTE_HINT

    hub = amqp_hub
    hub.core.eventhub.set_routes(["telemetry"])
    service = service_for(hub)
    stream = EventStream(lambda: endpoint(hub))
    stream.sources_seen.quiet_seconds = 0.5
    try:
        await stream.start()
        await until(lambda: hub.core.eventhub.reader_count() >= 1)
        await service.create_device("routed")  # a lifecycle event, not routed
        await service.patch_twin("routed", None, {"tags": {"site": "lab"}}, None)
        send(hub, "routed", None, b"reading")
        await until(lambda: stream.log.total >= 1)
        wanted = list(Source)
        await until(lambda: stream.sources_seen.hint(wanted, time.monotonic()) is not None)
        assert stream.sources_seen.hint(wanted, time.monotonic()) == ROUTE_HINT
        assert "twin-explorer hub --routes telemetry,twin,lifecycle,connection" in ROUTE_HINT
        assert "Message routing" in ROUTE_HINT
        assert stream.sources_seen.hint([Source.TELEMETRY], time.monotonic()) is None

        # Routed again: the next notification ends the hint.
        hub.core.eventhub.set_routes(["telemetry", "twin", "lifecycle", "connection"])
        await service.create_device("routed-2")
        await until(lambda: Source.LIFECYCLE in {r.source for r in stream.log.visible()})
        assert stream.sources_seen.hint(wanted, time.monotonic()) is None
    finally:
        await stream.aclose()
        await service.aclose()
