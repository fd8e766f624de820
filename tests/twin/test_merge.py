from __future__ import annotations

import json

from hypothesis import given

from tests.twin.strategies import documents, patches
from twin_explorer.twin.merge import is_noop, merge_patch, strip_nulls
from twin_explorer.twin.values import json_equal


def test_null_deletes_and_absent_null_is_noop():
    assert merge_patch({"a": 1, "b": 2}, {"a": None, "zz": None}) == {"b": 2}


def test_objects_merge_recursively():
    target = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": 1}
    patch = {"a": {"y": {"q": None, "r": 3}, "z": True}}
    assert merge_patch(target, patch) == {
        "a": {"x": 1, "y": {"p": 1, "r": 3}, "z": True},
        "b": 1,
    }


def test_arrays_and_scalars_replace():
    target = {"list": [1, 2, 3], "s": "x", "o": {"k": 1}}
    patch = {"list": [9], "s": {"now": "object"}, "o": [1]}
    assert merge_patch(target, patch) == {"list": [9], "s": {"now": "object"}, "o": [1]}


def test_object_replacing_scalar_drops_its_nulls():
    # RFC 7386: a non-object target becomes {} before the patch object is applied.
    assert merge_patch({"a": 5}, {"a": {"b": None, "c": {"d": None}, "e": 1}}) == {
        "a": {"c": {}, "e": 1}
    }


def test_empty_object_creates_empty_object():
    assert merge_patch({}, {"a": {}}) == {"a": {}}
    assert merge_patch({"a": {"k": 1}}, {"a": {}}) == {"a": {"k": 1}}


def test_nulls_inside_arrays_are_kept():
    assert merge_patch({}, {"a": [None, {"b": None}]}) == {"a": [None, {"b": None}]}


def test_rfc7386_appendix_examples():
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert merge_patch(target, patch) == expected, (target, patch)


def test_inputs_never_mutated_nor_shared():
    target = {"a": {"x": [1, {"k": 1}]}, "b": 2}
    patch = {"a": {"y": [3]}, "b": None}
    target_before = json.dumps(target)
    patch_before = json.dumps(patch)
    result = merge_patch(target, patch)
    assert json.dumps(target) == target_before
    assert json.dumps(patch) == patch_before
    result["a"]["x"][1]["k"] = 99
    result["a"]["y"].append(4)
    assert target["a"]["x"][1]["k"] == 1
    assert patch["a"]["y"] == [3]


def test_is_noop():
    doc = {"a": 1, "o": {"x": True, "l": [1, 2]}}
    assert is_noop(doc, {})
    assert is_noop(doc, {"a": 1, "missing": None, "o": {"x": True}})
    assert is_noop(doc, {"o": {"l": [1, 2], "gone": None}})
    assert is_noop(doc, {"o": {}})
    assert not is_noop(doc, {"a": 2})
    assert not is_noop(doc, {"a": None})
    assert not is_noop(doc, {"new": {}})
    assert not is_noop(doc, {"a": {}})
    assert not is_noop(doc, {"o": {"l": [1]}})


def test_is_noop_tells_json_types_apart():
    # Python says True == 1 == 1.0; JSON does not.
    assert not is_noop({"a": 1}, {"a": True})
    assert not is_noop({"a": 1}, {"a": 1.0})
    assert not is_noop({"a": [0]}, {"a": [False]})
    assert is_noop({"a": 1.5}, {"a": 1.5})


def test_strip_nulls():
    assert strip_nulls({"a": None, "b": {"c": None, "d": [None]}}) == {"b": {"d": [None]}}


@given(documents, patches)
def test_is_noop_agrees_with_merge(target, patch):
    assert is_noop(target, patch) == json_equal(merge_patch(target, patch), target)


@given(documents, patches)
def test_merge_is_idempotent(target, patch):
    once = merge_patch(target, patch)
    assert json_equal(merge_patch(once, patch), once)
    assert is_noop(once, patch)
