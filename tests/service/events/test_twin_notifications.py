"""Twin change notifications into the patch log: who made each change, the app's own
writes not shown twice, and polling off only while notifications flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from twin_explorer.service.events.consumer import STOPPED
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.events.stream import EventStream
from twin_explorer.service.twin_notifications import FROM_DEVICE, FROM_SERVICE, TwinNotifications
from twin_explorer.service.watch import TwinWatcher
from twin_explorer.twin.events import Direction, PatchEvent, PatchStream, Section


def _change(body: dict, *, device="d1", module=None, age=0.0) -> EventRecord:
    return EventRecord(
        time=datetime.now(UTC) - timedelta(seconds=age),
        source=Source.TWIN,
        device_id=device,
        module_id=module,
        body=json.dumps(body).encode(),
        properties={"opType": "updateTwin"},
    )


@pytest.fixture
async def feed():
    patches, stream = PatchStream(), EventStream()
    watcher = TwinWatcher(patches)
    seen: list[PatchEvent] = []
    patches.subscribe(seen.append)
    notifications = TwinNotifications(patches, stream, watcher)
    yield patches, stream, watcher, seen
    notifications.close()
    await watcher.aclose()


def _observed(seen: list[PatchEvent]) -> list[PatchEvent]:
    return [e for e in seen if e.direction is Direction.OBSERVED]


async def test_each_part_shows_with_who_made_it(feed):
    _, stream, _, seen = feed
    stream.batches.emit(
        [
            _change({"version": 3, "properties": {"desired": {"rate": 5, "$version": 2}}}),
            _change({"version": 4, "properties": {"reported": {"t": 1, "$version": 2}}}),
            _change({"version": 5, "tags": {"site": "x"}}, module="m"),
        ]
    )
    shown = [(e.identity, e.section, e.body, e.version, e.source) for e in _observed(seen)]
    assert shown == [
        ("d1", Section.DESIRED, {"rate": 5}, 2, FROM_SERVICE),
        ("d1", Section.REPORTED, {"t": 1}, 2, FROM_DEVICE),
        ("d1/m", Section.TAGS, {"site": "x"}, None, FROM_SERVICE),
    ]


async def test_the_apps_own_writes_are_not_shown_twice(feed):
    patches, stream, _, seen = feed
    patches.publish(PatchEvent("d1", None, Direction.SENT, Section.DESIRED, {"rate": 5}, version=2))
    patches.publish(PatchEvent("d1", None, Direction.SENT, Section.TAGS, {"site": "x"}))
    stream.batches.emit(
        [
            _change({"version": 3, "properties": {"desired": {"rate": 5, "$version": 2}}}),
            _change({"version": 4, "tags": {"site": "x", "floor": 1}}),
            _change({"version": 5, "properties": {"desired": {"rate": 6, "$version": 3}}}),
        ]
    )
    assert [(e.section, e.body) for e in _observed(seen)] == [(Section.DESIRED, {"rate": 6})]


async def test_history_read_again_is_not_news(feed):
    _, stream, _, seen = feed
    stream.batches.emit([_change({"version": 3, "tags": {"a": 1}}, age=3600)])
    assert _observed(seen) == []


async def test_polling_stops_while_notifications_flow_and_resumes_without(feed):
    _, stream, watcher, _ = feed
    assert not watcher.notified
    stream.batches.emit([_change({"version": 3, "tags": {"a": 1}})])
    assert watcher.notified
    stream.status.set(STOPPED)
    assert not watcher.notified
