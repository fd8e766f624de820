from __future__ import annotations

import json
import random

from hypothesis import given

from tests.twin.strategies import documents
from twin_explorer.twin.diff import make_patch
from twin_explorer.twin.merge import merge_patch
from twin_explorer.twin.values import json_equal


def test_identical_documents_give_empty_patch():
    doc = {"a": 1, "o": {"l": [1, {"x": 2}], "s": "t"}}
    assert make_patch(doc, json.loads(json.dumps(doc))) == {}


def test_removed_keys_become_null():
    assert make_patch({"a": 1, "b": {"c": 1}}, {"a": 1}) == {"b": None}


def test_changed_nested_object_gives_nested_patch():
    old = {"cfg": {"rate": 5, "mode": "a", "deep": {"x": 1, "y": 2}}, "keep": True}
    new = {"cfg": {"rate": 6, "mode": "a", "deep": {"x": 1}}, "keep": True}
    assert make_patch(old, new) == {"cfg": {"rate": 6, "deep": {"y": None}}}


def test_arrays_compared_and_sent_whole():
    old = {"l": [1, 2, 3], "same": [{"a": 1}]}
    new = {"l": [1, 2, 4], "same": [{"a": 1}]}
    assert make_patch(old, new) == {"l": [1, 2, 4]}


def test_type_changes_replace_whole():
    assert make_patch({"a": {"x": 1}}, {"a": 5}) == {"a": 5}
    assert make_patch({"a": 5}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    assert make_patch({"a": 5}, {"a": {}}) == {"a": {}}
    assert make_patch({"a": {"x": 1}}, {"a": {}}) == {"a": {"x": None}}


def test_json_types_are_distinguished():
    assert make_patch({"a": 1}, {"a": True}) == {"a": True}
    assert make_patch({"a": 1}, {"a": 1.0}) == {"a": 1.0}
    assert make_patch({"a": [1]}, {"a": [True]}) == {"a": [True]}


def test_patch_shares_nothing_with_inputs():
    new = {"o": {"l": [1, 2]}}
    patch = make_patch({}, new)
    patch["o"]["l"].append(3)
    assert new == {"o": {"l": [1, 2]}}


def _patch_size(patch: dict) -> int:
    """Number of leaf entries a patch writes (nulls count as one)."""
    return sum(_patch_size(v) if isinstance(v, dict) and v else 1 for v in patch.values())


@given(documents, documents)
def test_round_trip(old, new):
    patch = make_patch(old, new)
    assert json_equal(merge_patch(old, patch), new)


@given(documents, documents)
def test_patch_is_minimal(old, new):
    patch = make_patch(old, new)
    # Every top-level member of the patch is needed: without it the result differs.
    for key in patch:
        smaller = {k: v for k, v in patch.items() if k != key}
        assert not json_equal(merge_patch(old, smaller), new)
    # A nested patch is only used where both sides are objects, and is never empty.
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            assert value, key
    # No key is touched that is equal on both sides.
    for key in patch:
        assert key not in old or key not in new or not json_equal(old[key], new[key])


@given(documents)
def test_patch_to_self_is_empty(doc):
    assert make_patch(doc, doc) == {}


def _big_doc(rng: random.Random, target_bytes: int) -> dict:
    doc: dict = {}
    while len(json.dumps(doc)) < target_bytes:
        for _ in range(50):
            _add_random_member(rng, doc)
    return doc


def _add_random_member(rng: random.Random, doc: dict) -> None:
    group = doc.setdefault(f"g{rng.randrange(40)}", {})
    group[f"k{rng.randrange(1000)}"] = rng.choice(
        [rng.randrange(10**6), f"value-{rng.random()}", [1, 2, 3], {"n": rng.random()}]
    )


def test_round_trip_on_32kb_documents():
    rng = random.Random(7)
    old = _big_doc(rng, 32 * 1024)
    new = merge_patch(old, {"g1": {"extra": 1}, "g2": None, "g3": {"k5": "changed"}})
    new = merge_patch(new, _big_doc(rng, 4 * 1024))
    patch = make_patch(old, new)
    assert merge_patch(old, patch) == new
    assert len(json.dumps(patch)) < len(json.dumps(new))
