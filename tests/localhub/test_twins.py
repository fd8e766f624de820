"""Twin operations through the core: etags, versions, listeners, device side."""

from __future__ import annotations

import pytest

from tests.localhub.conftest import FakeClock, sas_body
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.core.twinview import split_view
from twin_explorer.localhub.errors import HubError
from twin_explorer.twin.document import TwinDocument


@pytest.fixture
def notes(core: HubCore) -> list[tuple]:
    seen: list[tuple] = []
    core.on_desired_patch(lambda d, m, body: seen.append((d, m, body)))
    core.put_device("d1", sas_body(), None)
    core.put_module("d1", "m1", {}, None)
    return seen


def test_new_twin_shape(core: HubCore, notes: list) -> None:
    twin = core.get_twin("d1")
    device = core.get_device("d1")
    assert twin["deviceId"] == "d1" and "moduleId" not in twin
    assert twin["deviceEtag"] == device["etag"]
    assert twin["etag"] == "AAAAAAAAAAE="
    assert twin["version"] == 1
    assert twin["tags"] == {}
    assert twin["properties"]["desired"]["$version"] == 1
    assert twin["properties"]["reported"]["$version"] == 1
    assert "$lastUpdated" in twin["properties"]["desired"]["$metadata"]
    assert twin["authenticationType"] == "sas"
    assert twin["statusUpdateTime"] == "0001-01-01T00:00:00Z"
    assert "generationId" not in twin and "connectionStateUpdatedTime" not in twin
    module_twin = core.get_twin("d1", "m1")
    assert module_twin["moduleId"] == "m1"
    assert "capabilities" not in module_twin


def test_patch_merges_notifies_and_moves_etag(core: HubCore, notes: list) -> None:
    before = core.get_twin("d1", "m1")
    after = core.patch_twin(
        "d1",
        "m1",
        {"tags": {"site": "x"}, "properties": {"desired": {"a": 1, "b": {"c": 2}}}},
        f'"{before["etag"]}"',
    )
    assert after["tags"] == {"site": "x"}
    assert after["properties"]["desired"]["a"] == 1
    assert after["properties"]["desired"]["$version"] == 2
    assert after["etag"] != before["etag"]
    assert after == core.get_twin("d1", "m1")
    assert notes == [("d1", "m1", {"a": 1, "b": {"c": 2}, "$version": 2})]
    core.patch_twin("d1", "m1", {"properties": {"desired": {"b": None}}}, None)
    assert notes[-1] == ("d1", "m1", {"b": None, "$version": 3})
    assert "b" not in core.get_twin("d1", "m1")["properties"]["desired"]


def test_tags_only_patch_does_not_notify(core: HubCore, notes: list) -> None:
    twin = core.patch_twin("d1", None, {"tags": {"t": 1}}, None)
    assert twin["version"] == 2
    assert notes == []


def test_stale_twin_etag_is_412_and_changes_nothing(core: HubCore, notes: list) -> None:
    first = core.get_twin("d1")
    core.patch_twin("d1", None, {"tags": {"t": 1}}, None)
    for call in (core.patch_twin, core.replace_twin):
        with pytest.raises(HubError) as exc:
            call("d1", None, {"tags": {"t": 2}}, f'"{first["etag"]}"')
        assert (exc.value.status, exc.value.error_code) == (412, "PreconditionFailed")
    assert core.get_twin("d1")["tags"] == {"t": 1}
    # The identity etag is not the twin etag.
    with pytest.raises(HubError):
        core.patch_twin("d1", None, {"tags": {"t": 3}}, core.get_device("d1")["etag"])
    core.patch_twin("d1", None, {"tags": {"t": 3}}, '"*"')
    assert core.get_twin("d1")["tags"] == {"t": 3}


def test_read_modify_write_of_the_whole_twin(core: HubCore, notes: list) -> None:
    twin = core.patch_twin("d1", None, {"properties": {"desired": {"x": 1}}}, None)
    core.patch_reported("d1", None, {"r": 1})
    twin = core.get_twin("d1")
    twin["properties"]["desired"]["x"] = 2
    twin["properties"]["reported"]["r"] = 99  # ignored: reported is the device's
    updated = core.patch_twin("d1", None, twin, twin["etag"])
    assert updated["properties"]["desired"]["x"] == 2
    assert updated["properties"]["reported"]["r"] == 1


def test_replace_twin(core: HubCore, notes: list) -> None:
    core.patch_twin(
        "d1", None, {"tags": {"a": 1}, "properties": {"desired": {"x": 1, "y": 2}}}, None
    )
    core.patch_reported("d1", None, {"r": 1})
    twin = core.replace_twin("d1", None, {"properties": {"desired": {"y": 3}}}, None)
    assert twin["tags"] == {}
    assert {k: v for k, v in twin["properties"]["desired"].items() if k[0] != "$"} == {"y": 3}
    assert twin["properties"]["reported"]["r"] == 1
    assert notes[-1] == ("d1", None, {"y": 3, "x": None, "$version": 3})


@pytest.mark.parametrize(
    "body",
    [
        {"properties": {"desired": {"bad key": 1}}},
        {"tags": {"$reserved": 1}},
        {"properties": {"desired": {"big": "x" * 5000}}},
        {"tags": "not an object"},
    ],
)
def test_invalid_twin_is_400_with_the_issue(core: HubCore, notes: list, body: dict) -> None:
    before = core.get_twin("d1")
    with pytest.raises(HubError) as exc:
        core.patch_twin("d1", None, body, None)
    assert (exc.value.status, exc.value.error_code, exc.value.numeric) == (
        400,
        "ArgumentInvalid",
        400004,
    )
    assert exc.value.message.startswith("Invalid twin: ")
    assert core.get_twin("d1") == before
    assert notes == []


def test_non_object_bodies_are_400(core: HubCore, notes: list) -> None:
    for call in (
        lambda: core.patch_twin("d1", None, [1], None),
        lambda: core.replace_twin("d1", None, "x", None),
        lambda: core.patch_reported("d1", None, [1, 2]),
        lambda: core.patch_reported("d1", "m1", None),
    ):
        with pytest.raises(HubError) as exc:
            call()
        assert exc.value.status == 400


def test_device_side_view_and_reported_patch(core: HubCore, notes: list) -> None:
    core.patch_twin("d1", "m1", {"properties": {"desired": {"interval": 5}}}, None)
    assert core.device_twin("d1", "m1") == {
        "desired": {"interval": 5, "$version": 2},
        "reported": {"$version": 1},
    }
    etag = core.get_twin("d1", "m1")["etag"]
    assert core.patch_reported("d1", "m1", {"temp": 21.5, "nested": {"a": None}}) == 2
    assert core.patch_reported("d1", "m1", {"temp": 22}) == 3
    assert core.device_twin("d1", "m1")["reported"] == {"temp": 22, "nested": {}, "$version": 3}
    service = core.get_twin("d1", "m1")
    assert service["properties"]["reported"]["temp"] == 22
    assert service["etag"] != etag
    assert notes == [("d1", "m1", {"interval": 5, "$version": 2})]  # reported never notifies


def test_reported_noop_keeps_version(core: HubCore, notes: list) -> None:
    assert core.patch_reported("d1", None, {"a": 1}) == 2
    assert core.patch_reported("d1", None, {"a": 1}) == 2
    with pytest.raises(HubError) as exc:
        core.patch_reported("d1", None, {"a b": 1})
    assert exc.value.status == 400


def test_a_failing_listener_does_not_fail_the_write(core: HubCore, notes: list) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("listener bug")

    core.on_desired_patch(boom)
    twin = core.patch_twin("d1", None, {"properties": {"desired": {"a": 1}}}, None)
    assert twin["properties"]["desired"]["a"] == 1
    assert len(notes) == 1


def test_twin_shows_connection_and_activity(core: HubCore, notes: list, clock: FakeClock) -> None:
    core.set_connected("d1", "m1", True)
    twin = core.get_twin("d1", "m1")
    assert twin["connectionState"] == "Connected"
    assert twin["lastActivityTime"] == "2026-01-01T00:00:00.0000000Z"
    clock.advance(1.5)
    core.touch("d1", "m1")
    # Not flushed yet, but reads flush first.
    assert core.get_module("d1", "m1")["lastActivityTime"] == "2026-01-01T00:00:01.5000000Z"
    clock.advance(1)
    core.set_connected("d1", "m1", False)
    module = core.get_module("d1", "m1")
    assert module["connectionState"] == "Disconnected"
    assert module["connectionStateUpdatedTime"] == "2026-01-01T00:00:02.5000000Z"
    assert core.get_twin("d1", "m1")["connectionState"] == "Disconnected"
    # Twin writes keep the identity fields.
    twin = core.patch_twin("d1", "m1", {"tags": {"a": 1}}, None)
    assert twin["lastActivityTime"] == "2026-01-01T00:00:01.5000000Z"


def test_device_side_operations_count_as_activity(
    core: HubCore, notes: list, clock: FakeClock
) -> None:
    clock.advance(3)
    core.device_twin("d1", "m1")
    assert core.get_module("d1", "m1")["lastActivityTime"] == "2026-01-01T00:00:03.0000000Z"
    clock.advance(1)
    core.patch_reported("d1", None, {"a": 1})
    assert core.get_twin("d1")["lastActivityTime"] == "2026-01-01T00:00:04.0000000Z"


def test_stored_view_round_trips_the_twin_state(core: HubCore, notes: list) -> None:
    core.patch_twin("d1", "m1", {"tags": {"t": [1, {"x": None}]}}, None)
    core.patch_twin("d1", "m1", {"properties": {"desired": {"a": {"b": 1}, "c": "x"}}}, None)
    core.patch_reported("d1", "m1", {"r": {"s": True}})
    core.patch_twin("d1", "m1", {"properties": {"desired": {"a": None}}}, None)
    doc = core.get_twin("d1", "m1")
    root, twin = split_view(doc)
    assert twin.service_view(root) == doc
    assert TwinDocument.from_json(twin.to_json()) == twin
    assert twin.desired == {"c": "x"} and twin.reported == {"r": {"s": True}}
    assert (twin.version, twin.desired_version, twin.reported_version) == (5, 3, 2)
