from __future__ import annotations

import base64
import json
import struct

import pytest

from twin_explorer.twin.document import TwinDocument
from twin_explorer.twin.errors import InvalidTwin

T0 = "2024-01-01T00:00:00.0000000Z"
T1 = "2024-01-01T00:00:01.0000000Z"
T2 = "2024-01-01T00:00:02.0000000Z"
T3 = "2024-01-01T00:00:03.0000000Z"


def desired(patch: dict) -> dict:
    return {"properties": {"desired": patch}}


@pytest.fixture
def twin() -> TwinDocument:
    return TwinDocument.new(T0)


def snapshot(doc: TwinDocument) -> str:
    return json.dumps(doc.to_json(), sort_keys=True)


# --------------------------------------------------------------------------- new / etag


def test_new_twin_matches_lifecycle_example(twin):
    assert twin.version == 1
    assert twin.etag == "AAAAAAAAAAE="
    assert twin.properties_view() == {
        "desired": {"$metadata": {"$lastUpdated": T0}, "$version": 1},
        "reported": {"$metadata": {"$lastUpdated": T0}, "$version": 1},
    }
    assert twin.device_view() == {"desired": {"$version": 1}, "reported": {"$version": 1}}
    assert twin.tags == {}


@pytest.mark.parametrize("version", [1, 2, 7, 255, 2**40])
def test_etag_is_base64_of_big_endian_version(twin, version):
    twin.version = version
    assert base64.b64decode(twin.etag) == struct.pack(">q", version)


# ---------------------------------------------------------------------- service PATCH


def test_tags_only_patch_bumps_root_version_not_desired(twin):
    etag = twin.etag
    assert twin.apply_service_patch({"tags": {"site": "a"}}, T1) is None
    assert twin.tags == {"site": "a"}
    assert twin.version == 2
    assert twin.etag != etag
    assert twin.desired_version == 1
    assert twin.desired_metadata == {"$lastUpdated": T0}


def test_desired_patch_returns_notification_and_bumps_once(twin):
    twin.apply_service_patch(desired({"a": 1, "b": {"c": 2}, "gone": 3}), T1)
    body = {"tags": {"t": 1}, "properties": {"desired": {"a": 5, "b": {"d": 4}, "gone": None}}}
    notification = twin.apply_service_patch(body, T2)
    assert notification == {"a": 5, "b": {"d": 4}, "gone": None, "$version": 3}
    assert twin.desired == {"a": 5, "b": {"c": 2, "d": 4}}
    assert twin.desired_version == 3
    assert twin.version == 3  # one bump per operation, though tags and desired both changed
    assert twin.tags == {"t": 1}


def test_notification_has_version_last_and_no_metadata(twin):
    notification = twin.apply_service_patch(desired({"x": 1}), T1)
    assert list(notification) == ["x", "$version"]


def test_noop_patch_changes_nothing(twin):
    twin.apply_service_patch({"tags": {"t": 1}, **desired({"a": {"b": 1}})}, T1)
    before = snapshot(twin)
    assert (
        twin.apply_service_patch({"tags": {"t": 1}, **desired({"a": {}, "zz": None})}, T2) is None
    )
    assert twin.apply_service_patch({}, T2) is None
    assert snapshot(twin) == before


def test_noop_desired_with_tag_change_does_not_touch_desired(twin):
    twin.apply_service_patch(desired({"a": 1}), T1)
    assert twin.apply_service_patch({"tags": {"t": 2}, **desired({"a": 1})}, T2) is None
    assert twin.desired_version == 2
    assert twin.version == 3
    assert twin.desired_metadata["$lastUpdated"] == T1


def test_value_of_other_json_type_is_a_change(twin):
    twin.apply_service_patch(desired({"a": 1}), T1)
    assert twin.apply_service_patch(desired({"a": True}), T2) == {"a": True, "$version": 3}


def test_ignored_parts_of_service_body(twin):
    body = {
        "deviceId": "other",
        "moduleId": "m",
        "etag": "AAAAAAAAAAk=",
        "version": 99,
        "status": "disabled",
        "statusReason": "r",
        "connectionState": "Connected",
        "cloudToDeviceMessageCount": 5,
        "authenticationType": "sas",
        "x509Thumbprint": {"primaryThumbprint": None},
        "capabilities": {"iotEdge": False},
        "modelId": "dtmi:x;1",
        "deviceEtag": "MA==",
        "properties": {
            "desired": {"$metadata": {"$lastUpdated": "bogus"}, "$version": 42, "a": 1},
            "reported": {"r": 1, "$version": 9},
        },
    }
    assert twin.apply_service_patch(body, T1) == {"a": 1, "$version": 2}
    assert twin.reported == {}
    assert twin.reported_version == 1
    assert twin.version == 2
    assert twin.desired_metadata["$lastUpdated"] == T1


def test_null_sections_are_absent(twin):
    assert twin.apply_service_patch({"tags": None, "properties": None}, T1) is None
    assert twin.apply_service_patch({"properties": {"desired": None}}, T1) is None
    assert twin.version == 1


def test_read_modify_write_whole_twin_is_accepted(twin):
    twin.apply_service_patch({"tags": {"t": 1}, **desired({"a": {"b": 1}, "l": [1]})}, T1)
    twin.apply_reported_patch({"r": 1}, T1)
    whole = json.loads(json.dumps(twin.service_view({"deviceId": "d1", "status": "enabled"})))
    whole["tags"]["t"] = 2
    assert twin.apply_service_patch(whole, T2) is None  # desired sent back unchanged
    assert twin.tags == {"t": 2}
    assert twin.desired_version == 2

    whole = json.loads(json.dumps(twin.service_view({"deviceId": "d1"})))
    whole["properties"]["desired"]["a"]["b"] = 5
    notification = twin.apply_service_patch(whole, T3)
    # The patch as received (whole desired without bookkeeping) goes to devices.
    assert notification == {"a": {"b": 5}, "l": [1], "$version": 3}
    assert twin.desired == {"a": {"b": 5}, "l": [1]}
    assert twin.reported == {"r": 1}


def test_other_dollar_keys_in_desired_are_rejected(twin):
    before = snapshot(twin)
    with pytest.raises(InvalidTwin) as info:
        twin.apply_service_patch(desired({"$foo": 1, "a": 1}), T1)
    [issue] = info.value.issues
    assert issue.code == "reserved-key"
    assert issue.path == ("desired", "$foo")
    assert snapshot(twin) == before


def test_invalid_patch_reports_all_issues_and_changes_nothing(twin):
    twin.apply_service_patch({"tags": {"keep": 1}, **desired({"keep": 1})}, T1)
    before = snapshot(twin)
    body = {"tags": {"ok": 1, "bad key": 1}, "properties": {"desired": {"n": 2**60, "fine": 2}}}
    with pytest.raises(InvalidTwin) as info:
        twin.apply_service_patch(body, T2)
    assert [(i.code, i.path) for i in info.value.issues] == [
        ("forbidden-char", ("tags", "bad key")),
        ("int-range", ("desired", "n")),
    ]
    assert snapshot(twin) == before


def test_merged_size_is_checked(twin):
    # Each patch is small, but the merged desired would exceed 32 KB.
    for i in range(8):
        twin.apply_service_patch(desired({f"k{i}": "x" * 4000}), T1)
    before = snapshot(twin)
    with pytest.raises(InvalidTwin) as info:
        twin.apply_service_patch(desired({"k8": "x" * 4000}), T2)
    [issue] = info.value.issues
    assert issue.code == "too-large"
    assert issue.path == ("desired",)
    assert snapshot(twin) == before
    # Deleting to make room in the same patch is fine: the merged result is what counts.
    assert twin.apply_service_patch(desired({"k0": None, "k8": "x" * 4000}), T2) is not None


def test_tags_size_limit_is_8kb(twin):
    twin.apply_service_patch({"tags": {"a": "x" * 4000, "b": "x" * 4000}}, T1)
    with pytest.raises(InvalidTwin, match="tags would be"):
        twin.apply_service_patch({"tags": {"c": "x" * 200}}, T2)


def test_non_object_bodies(twin):
    with pytest.raises(InvalidTwin) as info:
        twin.apply_service_patch([1], T1)  # type: ignore[arg-type]
    assert info.value.issues[0].code == "not-object"
    for body in ({"tags": 5}, {"properties": []}, {"properties": {"desired": "x"}}):
        with pytest.raises(InvalidTwin) as info:
            twin.apply_service_patch(body, T1)
        assert info.value.issues[0].code == "not-object"
    assert twin.version == 1


def test_patch_argument_is_not_kept_by_reference(twin):
    patch = {"a": {"b": [1]}}
    notification = twin.apply_service_patch(desired(patch), T1)
    patch["a"]["b"].append(2)
    notification["a"]["b"].append(3)
    assert twin.desired == {"a": {"b": [1]}}


# --------------------------------------------------------------------------- metadata


def test_metadata_for_every_level_and_leaf(twin):
    twin.apply_service_patch(desired({"a": {"b": {"c": 1}, "l": [1, {"x": 1}]}, "s": "v"}), T1)
    stamp = {"$lastUpdated": T1, "$lastUpdatedVersion": 2}
    assert twin.desired_metadata == {
        **stamp,
        "a": {**stamp, "b": {**stamp, "c": stamp}, "l": stamp},
        "s": stamp,
    }
    assert twin.properties_view()["desired"]["$metadata"] == twin.desired_metadata


def test_metadata_untouched_siblings_keep_their_stamps(twin):
    twin.apply_service_patch(desired({"a": {"x": 1, "y": 1}, "b": 1}), T1)
    twin.apply_service_patch(desired({"a": {"x": 2}}), T2)
    old = {"$lastUpdated": T1, "$lastUpdatedVersion": 2}
    new = {"$lastUpdated": T2, "$lastUpdatedVersion": 3}
    assert twin.desired_metadata == {
        **new,
        "a": {**new, "x": new, "y": old},
        "b": old,
    }


def test_metadata_of_removed_key_goes_and_parents_move(twin):
    twin.apply_service_patch(desired({"a": {"x": 1, "y": {"z": 1}}, "b": 1}), T1)
    twin.apply_service_patch(desired({"a": {"y": None}}), T2)
    new = {"$lastUpdated": T2, "$lastUpdatedVersion": 3}
    assert twin.desired == {"a": {"x": 1}, "b": 1}
    assert twin.desired_metadata["a"] == {
        **new,
        "x": {"$lastUpdated": T1, "$lastUpdatedVersion": 2},
    }
    assert twin.desired_metadata["$lastUpdated"] == T2
    twin.apply_service_patch(desired({"a": None}), T3)
    assert "a" not in twin.desired_metadata
    assert twin.desired_metadata["$lastUpdated"] == T3


def test_metadata_when_object_replaces_scalar(twin):
    twin.apply_service_patch(desired({"a": 1}), T1)
    twin.apply_service_patch(desired({"a": {"b": {"c": None}, "d": 1}}), T2)
    new = {"$lastUpdated": T2, "$lastUpdatedVersion": 3}
    assert twin.desired == {"a": {"b": {}, "d": 1}}
    assert twin.desired_metadata["a"] == {**new, "b": new, "d": new}


def test_metadata_when_scalar_replaces_object(twin):
    twin.apply_service_patch(desired({"a": {"b": 1}}), T1)
    twin.apply_service_patch(desired({"a": [1]}), T2)
    assert twin.desired_metadata["a"] == {"$lastUpdated": T2, "$lastUpdatedVersion": 3}


def test_metadata_names_every_key_of_an_applied_patch(twin):
    # Once desired changes, the patch as received is a write of each key it names.
    twin.apply_service_patch(desired({"a": 1, "b": 1}), T1)
    twin.apply_service_patch(desired({"a": 1, "b": 2}), T2)
    assert twin.desired_metadata["a"]["$lastUpdated"] == T2


def test_reported_metadata_has_no_version(twin):
    twin.apply_reported_patch({"a": {"b": 1}}, T1)
    assert twin.reported_metadata == {
        "$lastUpdated": T1,
        "a": {"$lastUpdated": T1, "b": {"$lastUpdated": T1}},
    }


# ------------------------------------------------------------------------- PUT replace


def test_replace_tags_and_desired_wholesale(twin):
    twin.apply_service_patch({"tags": {"old": 1}, **desired({"a": 1, "b": {"c": 1}})}, T1)
    twin.apply_reported_patch({"r": 1}, T1)
    notification = twin.replace({"tags": {"new": 1}, **desired({"b": {"d": 2}, "e": 3})}, T2)
    assert twin.tags == {"new": 1}
    assert twin.desired == {"b": {"d": 2}, "e": 3}
    assert twin.reported == {"r": 1}
    assert twin.desired_version == 3
    assert twin.reported_version == 2
    assert twin.version == 4
    assert notification == {"b": {"d": 2}, "e": 3, "a": None, "$version": 3}
    new = {"$lastUpdated": T2, "$lastUpdatedVersion": 3}
    assert twin.desired_metadata == {**new, "b": {**new, "d": new}, "e": new}


def test_replace_missing_sections_become_empty(twin):
    twin.apply_service_patch({"tags": {"t": 1}, **desired({"a": 1})}, T1)
    assert twin.replace({}, T2) == {"a": None, "$version": 3}
    assert twin.tags == {}
    assert twin.desired == {}
    assert twin.desired_metadata == {"$lastUpdated": T2, "$lastUpdatedVersion": 3}


def test_replace_always_bumps_even_when_identical(twin):
    twin.apply_service_patch(desired({"a": 1}), T1)
    assert twin.replace(desired({"a": 1}), T2) == {"a": 1, "$version": 3}
    assert twin.version == 3


def test_replace_drops_nulls_and_ignores_bookkeeping(twin):
    body = desired({"a": None, "b": {"c": None, "d": 1}, "$metadata": {}, "$version": 8})
    assert twin.replace(body, T1) == {"b": {"d": 1}, "$version": 2}
    assert twin.desired == {"b": {"d": 1}}


def test_replace_with_whole_twin_from_get(twin):
    twin.apply_service_patch({"tags": {"t": 1}, **desired({"a": 1})}, T1)
    whole = json.loads(json.dumps(twin.service_view({"deviceId": "d1"})))
    whole["properties"]["desired"]["a"] = 2
    assert twin.replace(whole, T2) == {"a": 2, "$version": 3}
    assert twin.tags == {"t": 1}


def test_invalid_replace_changes_nothing(twin):
    twin.apply_service_patch({"tags": {"t": 1}, **desired({"a": 1})}, T1)
    before = snapshot(twin)
    with pytest.raises(InvalidTwin) as info:
        twin.replace({"tags": {"ok": 1}, **desired({"x": {"$y": 1}, "big": "x" * 5000})}, T2)
    assert [i.code for i in info.value.issues] == ["reserved-key", "string-too-long"]
    assert snapshot(twin) == before
    with pytest.raises(InvalidTwin, match="desired would be"):
        twin.replace(desired({f"k{i}": "x" * 4000 for i in range(9)}), T2)
    assert snapshot(twin) == before


# ---------------------------------------------------------------------- reported PATCH


def test_reported_patch_merges_and_returns_version(twin):
    assert twin.apply_reported_patch({"temp": 21.5, "nested": {"a": 1, "b": 2}}, T1) == 2
    assert twin.apply_reported_patch({"nested": {"a": None}}, T2) == 3
    assert twin.reported == {"temp": 21.5, "nested": {"b": 2}}
    assert twin.version == 3
    assert twin.desired_version == 1


def test_reported_noop_returns_current_version(twin):
    twin.apply_reported_patch({"a": 1}, T1)
    before = snapshot(twin)
    assert twin.apply_reported_patch({"a": 1, "missing": None}, T2) == 2
    assert snapshot(twin) == before


def test_reported_bookkeeping_keys_are_ignored(twin):
    assert twin.apply_reported_patch({"$version": 9, "a": 1}, T1) == 2
    assert twin.reported == {"a": 1}


def test_invalid_reported_patch_changes_nothing(twin):
    before = snapshot(twin)
    with pytest.raises(InvalidTwin) as info:
        twin.apply_reported_patch({"a.b": 1, "ok": 2}, T1)
    assert info.value.issues[0].path == ("reported", "a.b")
    for bad in ([1, 2], "text", None, 5):
        with pytest.raises(InvalidTwin) as info:
            twin.apply_reported_patch(bad, T1)
        assert info.value.issues[0].code == "not-object"
    with pytest.raises(InvalidTwin, match="reported would be"):
        twin.apply_reported_patch({f"k{i}": "x" * 4000 for i in range(9)}, T1)
    assert snapshot(twin) == before


# ------------------------------------------------------------------------------ views


def test_views_are_copies(twin):
    twin.apply_service_patch({"tags": {"t": {"u": 1}}, **desired({"a": {"b": 1}})}, T1)
    view = twin.device_view()
    view["desired"]["a"]["b"] = 99
    props = twin.properties_view()
    props["desired"]["$metadata"]["a"]["$lastUpdated"] = "changed"
    service = twin.service_view({"deviceId": "d"})
    service["tags"]["t"]["u"] = 5
    assert twin.desired == {"a": {"b": 1}}
    assert twin.desired_metadata["a"]["$lastUpdated"] == T1
    assert twin.tags == {"t": {"u": 1}}


def test_device_view_has_no_metadata(twin):
    twin.apply_service_patch(desired({"a": 1}), T1)
    twin.apply_reported_patch({"r": {"s": 2}}, T2)
    assert twin.device_view() == {
        "desired": {"a": 1, "$version": 2},
        "reported": {"r": {"s": 2}, "$version": 2},
    }


def test_service_view_shape(twin):
    twin.apply_service_patch({"tags": {"t": 1}}, T1)
    view = twin.service_view({"deviceId": "d1", "moduleId": "m1", "etag": "ignored"})
    assert view["deviceId"] == "d1" and view["moduleId"] == "m1"
    assert view["etag"] == twin.etag == "AAAAAAAAAAI="
    assert view["version"] == 2
    assert view["tags"] == {"t": 1}
    assert view["properties"] == twin.properties_view()
    assert list(view["properties"]["desired"]) == ["$metadata", "$version"]


# ---------------------------------------------------------------------------- storage


def test_to_json_round_trip_is_exact(twin):
    twin.apply_service_patch({"tags": {"t": [1, None]}, **desired({"a": {"b": 1.5}})}, T1)
    twin.apply_reported_patch({"r": True, "é": "ü"}, T2)
    twin.apply_service_patch(desired({"a": None, "c": 1}), T3)
    stored = json.loads(json.dumps(twin.to_json()))
    restored = TwinDocument.from_json(stored)
    assert restored == twin
    assert restored.to_json() == twin.to_json()
    assert restored.properties_view() == twin.properties_view()
    assert restored.etag == twin.etag
    # Keeps working identically after the round trip.
    assert restored.apply_service_patch(desired({"d": 1}), T3) == twin.apply_service_patch(
        desired({"d": 1}), T3
    )
    assert restored == twin


def test_from_json_does_not_share_input(twin):
    data = twin.to_json()
    restored = TwinDocument.from_json(data)
    data["tags"]["x"] = 1
    assert restored.tags == {}


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("tags"),
        lambda d: d.update(version="1"),
        lambda d: d.update(desired_version=True),
        lambda d: d.update(desired=[]),
        lambda d: d.update(reported_metadata=None),
    ],
)
def test_from_json_rejects_malformed(twin, change):
    data = twin.to_json()
    change(data)
    with pytest.raises(ValueError, match="not a stored twin document"):
        TwinDocument.from_json(data)
