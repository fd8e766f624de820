"""The twin watcher against a real local hub (in-process ``HubServer``, real service SDK).

Changes "made elsewhere" come from a second ``HubService`` (another client of the same
hub) or, for reported properties, from the hub core's device-side write, exactly what
the MQTT server does when a device reports.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.hubfixtures import service_for
from tests.service.localhub import start_server
from tests.ui.conftest import until
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.editing import EditSession, Saved
from twin_explorer.service.history import TwinHistory
from twin_explorer.service.hub import HubService
from twin_explorer.service.models import Twin
from twin_explorer.service.watch import TwinWatcher, own_parts, section_of
from twin_explorer.twin.events import Direction, PatchEvent, PatchStream, Section

INTERVAL = 0.2


@pytest_asyncio.fixture
async def hub(tmp_path) -> AsyncIterator[HubServer]:
    server = start_server(tmp_path / "hub")
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def app(hub) -> AsyncIterator[HubService]:
    """The app's own service connection."""
    service = service_for(hub, sdk_retries=False)
    yield service
    await service.aclose()


@pytest_asyncio.fixture
async def other(hub) -> AsyncIterator[HubService]:
    """Someone else on the same hub."""
    service = service_for(hub, sdk_retries=False)
    yield service
    await service.aclose()


class Setup:
    def __init__(self, app: HubService) -> None:
        self.stream = PatchStream()
        self.events: list[PatchEvent] = []
        self.stream.subscribe(self.events.append)
        self.history = TwinHistory()
        self.watcher = TwinWatcher(self.stream, self.history, interval=INTERVAL, max_backoff=1.0)
        self.watcher.set_service(app)

    def observed(self, section: Section | None = None) -> list[PatchEvent]:
        return [
            e
            for e in self.events
            if e.direction is Direction.OBSERVED and (section is None or e.section is section)
        ]

    async def polled(self, identity: str, more: int = 1) -> None:
        """Wait until ``more`` further polls of ``identity`` have answered."""
        start = self.watcher.status(identity).polls
        await until(
            lambda: (self.watcher.status(identity) or start).polls >= start + more,
            what=f"{more} poll(s) of {identity}",
        )


@pytest_asyncio.fixture
async def setup(app) -> AsyncIterator[Setup]:
    made = Setup(app)
    yield made
    await made.watcher.aclose()


async def test_observes_each_section_changed_elsewhere(hub, app, other, setup):
    await app.create_device("d1")
    await app.create_module("d1", "m1")
    setup.watcher.select("d1", "m1")
    await setup.polled("d1/m1")
    assert setup.observed() == []  # the first look is a baseline

    twin = await other.get_twin("d1", "m1")
    await other.patch_twin(
        "d1", "m1", {"tags": {"site": "lab"}, "properties": {"desired": {"fan": 3}}}, twin.etag
    )
    await until(lambda: len(setup.observed()) == 2, what="tags and desired observed")
    tags, desired = setup.observed(Section.TAGS)[0], setup.observed(Section.DESIRED)[0]
    assert tags.body == {"site": "lab"} and tags.version is None
    assert desired.body == {"fan": 3} and desired.version == 2
    assert desired.identity == "d1/m1" and desired.source == "watch"

    version = hub.core.patch_reported("d1", "m1", {"temperature": 21.5, "fan": 3})
    await until(lambda: setup.observed(Section.REPORTED), what="reported observed")
    reported = setup.observed(Section.REPORTED)[0]
    assert reported.body == {"temperature": 21.5, "fan": 3} and reported.version == version

    hub.core.patch_reported("d1", "m1", {"temperature": None})
    await until(lambda: len(setup.observed(Section.REPORTED)) == 2, what="a deletion observed")
    assert setup.observed(Section.REPORTED)[1].body == {"temperature": None}


async def test_own_patches_are_not_observed_again(hub, app, other, setup):
    await app.create_device("d1")
    setup.watcher.select("d1")
    await setup.polled("d1")

    # The app sends a desired patch and says so on the stream (as the editor does).
    twin = await app.patch_twin("d1", None, {"properties": {"desired": {"a": 1}}}, None)
    version = twin.doc["properties"]["desired"]["$version"]
    setup.stream.publish(
        PatchEvent("d1", None, Direction.SENT, Section.DESIRED, {"a": 1}, version, source="editor")
    )
    # A simulated module reports (no $version known), and says so.
    hub.core.patch_reported("d1", None, {"ack": 1})
    setup.stream.publish(PatchEvent("d1", None, Direction.REPORTED, Section.REPORTED, {"ack": 1}))
    # Tags through a whole-twin patch.
    await app.patch_twin("d1", None, {"tags": {"t": 1}}, None)
    setup.stream.publish(PatchEvent("d1", None, Direction.SENT, Section.TWIN, {"tags": {"t": 1}}))
    await until(lambda: len(setup.history.versions("d1")) >= 2, what="the change seen")
    await until(
        lambda: setup.history.latest("d1").twin["tags"] == {"t": 1}, what="all changes seen"
    )
    await setup.polled("d1", 2)
    assert setup.observed() == []

    # Own and foreign changes between two polls: only the foreign part is observed.
    twin = await app.patch_twin("d1", None, {"properties": {"desired": {"a": 2}}}, None)
    own_version = twin.doc["properties"]["desired"]["$version"]
    await other.patch_twin("d1", None, {"properties": {"desired": {"b": 9}}}, None)
    setup.stream.publish(
        PatchEvent("d1", None, Direction.SENT, Section.DESIRED, {"a": 2}, own_version)
    )
    await until(lambda: setup.observed(), what="the foreign change")
    (seen,) = setup.observed()
    assert seen.body == {"b": 9} and seen.version == own_version + 1


async def test_history_records_versions_and_links_events(hub, app, other, setup):
    await app.create_device("d1")
    setup.watcher.select("d1")
    await setup.polled("d1")
    for n in (1, 2):
        await other.patch_twin("d1", None, {"properties": {"desired": {"n": n}}}, None)
        await until(lambda n=n: len(setup.observed()) == n, what=f"change {n}")
    versions = setup.history.versions("d1")
    assert [v.seq for v in versions] == [1, 2, 3]
    assert [v.section_version(Section.DESIRED) for v in versions] == [1, 2, 3]
    assert len({v.etag for v in versions}) == 3
    change = setup.history.change_for(setup.observed()[1])
    assert change is not None and not change.inferred
    assert change.before["properties"]["desired"]["n"] == 1
    assert change.after["properties"]["desired"]["n"] == 2


async def test_watched_set_follows_selection_pins_and_hub(app, setup):
    watcher = setup.watcher
    for device in ("d1", "d2", "d3"):
        await app.create_device(device)
    watcher.select("d1")
    assert watcher.watched() == ["d1"]
    watcher.select("d2")
    assert watcher.watched() == ["d2"]
    watcher.pin("d3")
    watcher.select(None)
    assert watcher.watched() == ["d3"]
    watcher.select("d1")
    watcher.watch_selected = False
    assert watcher.watched() == ["d3"]
    watcher.watch_selected = True
    await setup.polled("d1")
    watcher.unpin("d3")
    assert watcher.watched() == ["d1"] and watcher.pinned == []
    task = watcher._watches["d1"].task
    watcher.set_service(None)
    assert watcher.watched() == []
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert watcher.summary() == "Not watching any twin"


async def test_a_twin_watched_again_reports_what_changed_meanwhile(app, other, setup):
    await app.create_device("d1")
    await app.create_device("d2")
    setup.watcher.select("d1")
    await setup.polled("d1")
    setup.watcher.select("d2")
    await other.patch_twin("d1", None, {"tags": {"while": "away"}}, None)
    setup.watcher.select("d1")
    await until(lambda: setup.observed(), what="the change made while away")
    assert setup.observed()[0].body == {"while": "away"}


async def test_twenty_pinned_twins_are_staggered(app, setup):
    watcher = setup.watcher
    names = [f"pin-{n:02d}" for n in range(20)]
    await asyncio.gather(*(app.create_device(name) for name in names))

    in_flight = 0
    most = 0
    starts: list[float] = []
    real_get = app.get_twin

    async def counting_get(device_id: str, module_id: str | None = None) -> Twin:
        nonlocal in_flight, most
        starts.append(time.monotonic())
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await real_get(device_id, module_id)
        finally:
            in_flight -= 1

    app.get_twin = counting_get  # type: ignore[method-assign]  # count calls to the real hub
    watcher.interval = 1.0
    for name in names:
        watcher.pin(name)
    await until(lambda: len(starts) >= 30, within=30, what="30 polls")
    assert most <= 2  # max_in_flight
    spacing = watcher.interval / len(names)
    # Start k never comes before k slots after the first: no burst of 20 at once.
    for k, start in enumerate(starts[:30]):
        assert start - starts[0] >= k * spacing - 0.01, (k, start - starts[0])
    assert all(s.state == "watching" for s in watcher.statuses())


async def test_interval_changes_take_effect(app, setup):
    await app.create_device("d1")
    watcher = setup.watcher
    watcher.interval = 60
    watcher.select("d1")
    await setup.polled("d1")
    watcher.interval = 0.2  # the 60 s wait is cut short
    await setup.polled("d1", 2)
    assert "every 0.2 s" in watcher.summary()


async def test_backs_off_while_the_hub_is_away_and_recovers(tmp_path, hub, app, other, setup):
    await app.create_device("d1")
    watcher = setup.watcher
    watcher.select("d1")
    await setup.polled("d1")
    port = hub.rest_port

    await hub.close()
    await until(lambda: watcher.status("d1").failures >= 3, what="three failed polls")
    status = watcher.status("d1")
    assert status.state == "retrying" and status.unreachable
    assert status.retry_in is not None and status.retry_in > INTERVAL
    assert watcher.summary().startswith("Hub unreachable — retrying in")
    # Backoff: far fewer polls than one per interval while the hub is away.
    failures_at = time.monotonic()
    failures = status.failures
    await until(lambda: watcher.status("d1").failures > failures, what="a retry")
    assert time.monotonic() - failures_at >= INTERVAL

    back = start_server(tmp_path / "hub", rest_port=port)
    await back.start()
    try:
        await until(lambda: watcher.status("d1").state == "watching", what="recovery")
        assert watcher.summary() == "Watching d1 every 0.2 s"
        other_back = service_for(back, sdk_retries=False)
        try:
            await other_back.patch_twin("d1", None, {"tags": {"after": "restart"}}, None)
        finally:
            await other_back.aclose()
        await until(lambda: setup.observed(), what="a change after recovery")
        assert setup.observed()[0].body == {"after": "restart"}
    finally:
        await back.close()


async def test_a_deleted_twin_backs_off_with_plain_words(app, setup):
    await app.create_device("d1")
    setup.watcher.select("d1")
    await setup.polled("d1")
    await app.delete_device("d1")
    await until(lambda: setup.watcher.status("d1").state == "retrying", what="not found")
    status = setup.watcher.status("d1")
    assert status.error == "twin not found" and not status.unreachable
    assert setup.watcher.summary().startswith("d1: twin not found — retrying in")


def test_own_parts_split_a_whole_twin_patch():
    event = PatchEvent(
        "d",
        None,
        Direction.SENT,
        Section.TWIN,
        {"tags": {"a": 1}, "properties": {"desired": {"b": 2}}},
        version=7,
    )
    assert own_parts(event) == [(Section.TAGS, {"a": 1}, None), (Section.DESIRED, {"b": 2}, None)]
    tags = PatchEvent("d", None, Direction.SENT, Section.TAGS, {"a": 1}, version=7)
    assert own_parts(tags) == [(Section.TAGS, {"a": 1}, None)]


@pytest.mark.parametrize(
    ("section", "expected"),
    [(Section.TAGS, {"t": 1}), (Section.DESIRED, {"d": 1}), (Section.REPORTED, {})],
)
def test_section_of_drops_bookkeeping(section, expected):
    twin = {
        "tags": {"t": 1},
        "properties": {"desired": {"d": 1, "$metadata": {}, "$version": 4}, "reported": None},
    }
    assert section_of(twin, section) == expected


@pytest_asyncio.fixture
async def slow(app) -> AsyncIterator[Setup]:
    """A watcher that polls every 5 s: what lands in the history at once came from the
    stream, not from a poll (a save takes milliseconds)."""
    made = Setup(app)
    made.watcher.interval = 5
    yield made
    await made.watcher.aclose()


async def test_saves_land_in_the_history_at_once_and_once(app, slow):
    await app.create_device("d1")
    slow.watcher.select("d1")
    await slow.polled("d1")
    session = EditSession("d1", None)
    session.load(await app.get_twin("d1"))
    saved = []
    for n in (1, 2):  # two saves, back to back, no poll between them
        session.set_text(json.dumps({"tags": {}, "properties": {"desired": {"n": n}}}))
        outcome = await session.save(app)
        assert isinstance(outcome, Saved)
        slow.stream.publish(outcome.event)  # as the editor does
        saved.append(outcome.twin)
    versions = slow.history.versions("d1")
    assert [v.etag for v in versions[1:]] == [t.etag for t in saved]
    assert [v.twin["properties"]["desired"]["n"] for v in versions[1:]] == [1, 2]
    change = slow.history.change_for(slow.events[-1])
    assert change is not None and not change.inferred  # linked to the versions it made

    slow.watcher.poll_soon("d1")
    await slow.polled("d1")
    assert len(slow.history.versions("d1")) == 3  # the poll saw the same twin: no duplicate
    assert slow.observed() == []


@pytest.mark.parametrize("told_version", [False, True])
async def test_a_reported_patch_lands_at_once_and_a_poll_confirms_it(hub, app, slow, told_version):
    await app.create_device("d1")
    await app.create_module("d1", "m1")
    slow.watcher.select("d1", "m1")
    await slow.polled("d1/m1")
    version = hub.core.patch_reported("d1", "m1", {"fan": 3})
    # A simulated module says so: the device SDK does not tell which $version the hub
    # answered (the simulator publishes None); a producer that knows it may say.
    slow.stream.publish(
        PatchEvent(
            "d1",
            "m1",
            Direction.REPORTED,
            Section.REPORTED,
            {"fan": 3},
            version if told_version else None,
        )
    )
    inferred = slow.history.latest("d1/m1")
    assert inferred.seq == 2 and inferred.provisional
    assert section_of(inferred.twin, Section.REPORTED) == {"fan": 3}
    assert inferred.section_version(Section.REPORTED) == version

    await slow.polled("d1/m1")  # the report asked for a poll soon
    versions = slow.history.versions("d1/m1")
    real = await app.get_twin("d1", "m1")
    assert [v.seq for v in versions] == [1, 2]
    assert not versions[-1].provisional and versions[-1].etag == real.etag
    assert slow.observed() == []


async def test_no_polling_while_change_notifications_flow(hub, app, other, setup):
    """Notified: a watched twin is read only when asked (a notification said it moved),
    its changes are not published again (the notification did), and the history still
    gets the new version; without notifications the interval polling comes back."""
    await app.create_device("d1")
    setup.watcher.select("d1")
    await setup.polled("d1")
    setup.watcher.notified = True
    assert "live from the hub's events, no polling" in setup.watcher.summary()
    polls = len(setup.watcher.poll_starts)
    twin = await other.get_twin("d1")
    await other.patch_twin("d1", None, {"properties": {"desired": {"fan": 1}}}, twin.etag)
    # Ten intervals: an interval poll would have run many times and seen the change.
    await asyncio.sleep(INTERVAL * 10)
    assert len(setup.watcher.poll_starts) == polls
    setup.watcher.poll_soon("d1")  # what a notification does
    await setup.polled("d1")
    assert setup.observed() == []  # (the notification put it in the log)
    latest = setup.history.latest("d1")
    assert latest is not None and latest.twin["properties"]["desired"]["fan"] == 1

    setup.watcher.notified = False
    twin = await other.get_twin("d1")
    await other.patch_twin("d1", None, {"properties": {"desired": {"fan": 2}}}, twin.etag)
    await until(lambda: setup.observed(Section.DESIRED), what="polling again")
    assert setup.observed(Section.DESIRED)[0].body == {"fan": 2}
