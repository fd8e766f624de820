"""EditSession against a real local hub (in-process) through the real HubService."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio

from tests.hubfixtures import hub_server, service_for
from twin_explorer.service.edit_conflict import Choice, Operation
from twin_explorer.service.editing import Conflicted, EditError, EditSession, Saved
from twin_explorer.service.hub import HubService
from twin_explorer.twin.events import Direction, Section

__all__ = ["hub_server"]


@pytest_asyncio.fixture
async def service(hub_server):
    hub = service_for(hub_server)
    await hub.create_device("d1")
    await hub.create_module("d1", "m1")
    await hub.patch_twin(
        "d1",
        "m1",
        {
            "tags": {"site": "lab"},
            "properties": {"desired": {"fan": {"speed": 1, "mode": "auto"}, "led": "off"}},
        },
        None,
    )
    yield hub
    await hub.aclose()


async def _session(service: HubService) -> EditSession:
    session = EditSession("d1", "m1")
    session.load(await service.get_twin("d1", "m1"))
    return session


def _edit(session: EditSession, change) -> None:
    doc = json.loads(session.text)
    change(doc)
    session.set_text(json.dumps(doc, indent=2))


async def test_load_shows_only_tags_and_desired(service):
    session = await _session(service)
    assert json.loads(session.text) == {
        "tags": {"site": "lab"},
        "properties": {"desired": {"fan": {"speed": 1, "mode": "auto"}, "led": "off"}},
    }
    assert not session.dirty and not session.can_save and session.validation.ok
    assert '"reported"' in session.readonly_text() and '"etag"' in session.readonly_text()
    assert '"$version"' not in session.text


async def test_save_sends_the_minimal_patch_with_the_loaded_etag(service):
    session = await _session(service)
    etag = session.etag
    _edit(session, lambda d: d["properties"]["desired"]["fan"].update(speed=4))
    _edit(session, lambda d: d["properties"]["desired"].pop("led"))
    assert session.dirty and session.can_save
    assert session.patch() == {"properties": {"desired": {"fan": {"speed": 4}, "led": None}}}

    outcome = await session.save(service)

    assert isinstance(outcome, Saved) and not outcome.retried
    on_hub = (await service.get_twin("d1", "m1")).desired
    assert on_hub["fan"] == {"speed": 4, "mode": "auto"} and "led" not in on_hub
    assert session.etag != etag and session.etag == outcome.twin.etag
    assert not session.dirty
    event = outcome.event
    assert (event.direction, event.section, event.source) == (
        Direction.SENT,
        Section.DESIRED,
        "editor",
    )
    assert event.body == {"fan": {"speed": 4}, "led": None}
    assert event.version == on_hub["$version"]
    assert (event.device_id, event.module_id) == ("d1", "m1")


async def test_tags_and_desired_together_are_one_twin_event(service):
    session = await _session(service)
    _edit(session, lambda d: d["tags"].update(site="home"))
    only_tags = session.patch()
    assert only_tags == {"tags": {"site": "home"}}
    outcome = await session.save(service)
    assert outcome.event.section is Section.TAGS and outcome.event.body == {"site": "home"}
    assert outcome.event.version == outcome.twin.doc["version"]
    _edit(
        session,
        lambda d: (d["tags"].update(site="lab"), d["properties"]["desired"].update(led="on")),
    )
    outcome = await session.save(service)
    assert outcome.event.section is Section.TWIN
    assert outcome.event.body == {"tags": {"site": "lab"}, "properties": {"desired": {"led": "on"}}}


async def test_nothing_to_save_and_invalid_text_are_refused(service):
    session = await _session(service)
    with pytest.raises(EditError, match="Nothing to save"):
        await session.save(service)
    session.set_text('{"tags": {"a b": 1}, "properties": {"desired": {}}}')
    assert session.dirty and not session.can_save
    with pytest.raises(EditError, match="line 1, column 11"):
        await session.save(service)
    session.set_text("{ not json")
    assert session.dirty and session.diff() == []


async def test_a_reported_change_meanwhile_is_no_conflict(service, hub_server):
    session = await _session(service)
    hub_server.core.patch_reported("d1", "m1", {"fan": {"speed": 1}})
    _edit(session, lambda d: d["properties"]["desired"].update(led="on"))
    outcome = await session.save(service)
    assert isinstance(outcome, Saved) and outcome.retried
    twin = await service.get_twin("d1", "m1")
    assert twin.desired["led"] == "on" and twin.reported["fan"] == {"speed": 1}


async def _conflict(service: HubService):
    session = await _session(service)
    _edit(session, lambda d: d["properties"]["desired"]["fan"].update(speed=5))
    _edit(session, lambda d: d["tags"].update(owner="me"))
    # Someone else, meanwhile: one overlapping key, one not.
    await service.patch_twin(
        "d1", "m1", {"properties": {"desired": {"fan": {"speed": 9}, "led": "on"}}}, None
    )
    mine = session.text
    outcome = await session.save(service)
    assert isinstance(outcome, Conflicted)
    assert session.text == mine and session.dirty and not session.can_save
    return session, outcome.conflict


async def test_a_conflict_shows_both_and_loses_nothing(service):
    session, conflict = await _conflict(service)
    assert conflict.my_text == session.text
    assert conflict.their_patch == {"properties": {"desired": {"fan": {"speed": 9}, "led": "on"}}}
    assert conflict.my_patch == {
        "tags": {"owner": "me"},
        "properties": {"desired": {"fan": {"speed": 5}}},
    }
    assert [o.label for o in conflict.overlaps] == ["desired.fan.speed"]
    assert (await service.get_twin("d1", "m1")).desired["fan"]["speed"] == 9  # nothing written


async def test_merge_puts_both_changes_in_the_editor_then_saves(service):
    session, conflict = await _conflict(service)
    (overlap,) = conflict.overlaps
    session.merge({overlap.path: Choice.MINE})
    assert session.conflict is None and session.etag == conflict.their_etag
    assert session.patch() == {
        "tags": {"owner": "me"},
        "properties": {"desired": {"fan": {"speed": 5}}},
    }
    outcome = await session.save(service)
    assert isinstance(outcome, Saved)
    twin = await service.get_twin("d1", "m1")
    assert (
        twin.desired["fan"]["speed"] == 5
        and twin.desired["led"] == "on"
        and twin.tags["owner"] == "me"
    )


async def test_overwrite_sends_my_patch_with_their_etag(service):
    session, _ = await _conflict(service)
    outcome = await session.overwrite(service)
    assert isinstance(outcome, Saved) and outcome.body == {
        "tags": {"owner": "me"},
        "properties": {"desired": {"fan": {"speed": 5}}},
    }
    twin = await service.get_twin("d1", "m1")
    assert twin.desired["fan"]["speed"] == 5 and twin.desired["led"] == "on"
    assert not session.dirty and json.loads(session.text)["properties"]["desired"]["led"] == "on"


async def test_overwrite_that_loses_again_is_a_fresh_conflict(service):
    session, first = await _conflict(service)
    await service.patch_twin("d1", "m1", {"properties": {"desired": {"led": "blink"}}}, None)
    outcome = await session.overwrite(service)
    assert isinstance(outcome, Conflicted)
    assert outcome.conflict.my_patch == first.my_patch  # still against where I started
    assert outcome.conflict.their_patch["properties"]["desired"]["led"] == "blink"


async def test_reload_takes_theirs_and_my_edit_comes_back(service):
    session, conflict = await _conflict(service)
    session.reload_theirs()
    assert not session.dirty and session.conflict is None
    assert json.loads(session.text)["properties"]["desired"]["fan"]["speed"] == 9
    restored = session.restore_my_edit()
    assert session.text == conflict.my_text
    assert restored.my_patch == conflict.my_patch and [o.label for o in restored.overlaps] == [
        "desired.fan.speed"
    ]
    session.merge({restored.overlaps[0].path: Choice.THEIRS})
    assert session.patch() == {"tags": {"owner": "me"}}


async def test_replace_puts_the_document_and_can_conflict(service):
    session = await _session(service)
    _edit(session, lambda d: d.update(tags={}, properties={"desired": {"only": 1}}))
    outcome = await session.replace(service)
    assert isinstance(outcome, Saved) and outcome.operation is Operation.REPLACE
    assert outcome.event.section is Section.TWIN
    assert outcome.event.body == {"tags": {}, "properties": {"desired": {"only": 1}}}
    twin = await service.get_twin("d1", "m1")
    assert twin.tags == {} and {k for k in twin.desired if not k.startswith("$")} == {"only"}
    await service.patch_twin("d1", "m1", {"tags": {"x": 1}}, None)
    _edit(session, lambda d: d["properties"]["desired"].update(only=2))
    conflicted = await session.replace(service)
    assert isinstance(conflicted, Conflicted) and conflicted.conflict.operation is Operation.REPLACE
    outcome = await session.overwrite(service)
    assert isinstance(outcome, Saved)
    assert (await service.get_twin("d1", "m1")).tags == {}


async def test_observe_reloads_a_clean_editor_and_keeps_an_edit(service):
    session = await _session(service)
    await service.patch_twin("d1", "m1", {"properties": {"desired": {"led": "on"}}}, None)
    assert session.observe(await service.get_twin("d1", "m1"))
    assert json.loads(session.text)["properties"]["desired"]["led"] == "on"
    _edit(session, lambda d: d["tags"].update(owner="me"))
    await service.patch_twin("d1", "m1", {"properties": {"desired": {"led": "off"}}}, None)
    assert not session.observe(await service.get_twin("d1", "m1"))
    assert session.changed_remotely and json.loads(session.text)["tags"]["owner"] == "me"
