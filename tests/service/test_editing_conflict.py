"""Conflicts: their change, my change, where they overlap, and the merge of both."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.service.edit_conflict import Choice, Operation, find_conflict, leaves, nest
from twin_explorer.service.edit_text import editable_part
from twin_explorer.twin import make_patch, merge_patch


def _twin(tags: dict, desired: dict, etag: str = "AAAAAAAAAAE=") -> dict:
    return {
        "deviceId": "d1",
        "etag": etag,
        "tags": tags,
        "properties": {"desired": {**desired, "$version": 1}, "reported": {"$version": 1}},
    }


def _part(tags: dict, desired: dict) -> dict:
    return {"tags": tags, "properties": {"desired": desired}}


BASE = _twin({"site": "lab"}, {"fan": {"speed": 1, "mode": "auto"}, "led": "off"})


def test_changes_to_different_keys_merge_without_questions():
    theirs = _twin(
        {"site": "lab", "floor": 2},
        {"fan": {"speed": 1, "mode": "auto"}, "led": "on"},
        "AAAAAAAAAAI=",
    )
    mine = _part({"site": "lab"}, {"fan": {"speed": 5, "mode": "auto"}, "led": "off"})
    conflict = find_conflict(Operation.PATCH, BASE, theirs, mine, "text")
    assert conflict.overlaps == ()
    assert conflict.my_patch == {"properties": {"desired": {"fan": {"speed": 5}}}}
    assert conflict.their_patch == {"tags": {"floor": 2}, "properties": {"desired": {"led": "on"}}}
    assert conflict.merged() == _part(
        {"site": "lab", "floor": 2}, {"fan": {"speed": 5, "mode": "auto"}, "led": "on"}
    )
    assert (conflict.my_etag, conflict.their_etag) == ("AAAAAAAAAAE=", "AAAAAAAAAAI=")


def test_the_same_change_on_both_sides_is_no_overlap():
    theirs = _twin({"site": "lab"}, {"fan": {"speed": 7, "mode": "auto"}, "led": "off"})
    mine = _part({"site": "lab"}, {"fan": {"speed": 7, "mode": "auto"}, "led": "off"})
    assert find_conflict(Operation.PATCH, BASE, theirs, mine, "").overlaps == ()


def test_an_overlap_needs_a_choice_and_each_choice_wins_there():
    theirs = _twin({"site": "lab"}, {"fan": {"speed": 9, "mode": "auto"}, "led": "on"})
    mine = _part(
        {"site": "lab", "owner": "me"}, {"fan": {"speed": 5, "mode": "auto"}, "led": "off"}
    )
    conflict = find_conflict(Operation.PATCH, BASE, theirs, mine, "")
    (overlap,) = conflict.overlaps
    assert overlap.path == ("properties", "desired", "fan", "speed")
    assert overlap.label == "desired.fan.speed"
    assert (overlap.mine, overlap.theirs) == (5, 9)
    with pytest.raises(ValueError, match=r"desired\.fan\.speed"):
        conflict.merged()
    speed = overlap.path
    assert conflict.merged({speed: Choice.MINE}) == _part(
        {"site": "lab", "owner": "me"}, {"fan": {"speed": 5, "mode": "auto"}, "led": "on"}
    )
    assert conflict.merged({speed: Choice.THEIRS}) == _part(
        {"site": "lab", "owner": "me"}, {"fan": {"speed": 9, "mode": "auto"}, "led": "on"}
    )


def test_they_removed_what_i_changed_inside():
    theirs = _twin({"site": "lab"}, {"led": "off"})
    mine = _part({"site": "lab"}, {"fan": {"speed": 2, "mode": "auto"}, "led": "off"})
    conflict = find_conflict(Operation.PATCH, BASE, theirs, mine, "")
    (overlap,) = conflict.overlaps
    assert overlap.path == ("properties", "desired", "fan")
    assert not overlap.in_theirs and overlap.shown(Choice.THEIRS) == "(removed)"
    assert overlap.mine == {"speed": 2, "mode": "auto"}
    assert conflict.merged({overlap.path: Choice.THEIRS}) == _part({"site": "lab"}, {"led": "off"})
    assert conflict.merged({overlap.path: Choice.MINE})["properties"]["desired"]["fan"] == {
        "speed": 2,
        "mode": "auto",
    }


def test_i_removed_what_they_changed():
    theirs = _twin({"site": "lab"}, {"fan": {"speed": 1, "mode": "auto"}, "led": "blink"})
    mine = _part({"site": "lab"}, {"fan": {"speed": 1, "mode": "auto"}})
    conflict = find_conflict(Operation.PATCH, BASE, theirs, mine, "")
    (overlap,) = conflict.overlaps
    assert overlap.path == ("properties", "desired", "led") and not overlap.in_mine
    merged = conflict.merged({overlap.path: Choice.MINE})
    assert "led" not in merged["properties"]["desired"]


def test_leaves_and_nest_are_inverse():
    patch = {
        "tags": {"a": None, "b": {"c": 1, "d": {}}},
        "properties": {"desired": {"x": [1, None]}},
    }
    assert nest(list(leaves(patch))) == patch


sections = st.dictionaries(
    st.sampled_from("abcd"),
    st.one_of(
        st.integers(0, 3), st.dictionaries(st.sampled_from("xy"), st.integers(0, 3), max_size=2)
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(sections, sections, sections)
def test_merge_keeps_both_sides_and_each_choice(base_desired, their_desired, my_desired):
    base = _twin({}, base_desired)
    theirs = _twin({}, their_desired)
    mine = _part({}, my_desired)
    conflict = find_conflict(Operation.PATCH, base, theirs, mine, "")
    for choice in Choice:
        merged = conflict.merged({o.path: choice for o in conflict.overlaps})
        for overlap in conflict.overlaps:
            node = merged
            for key in overlap.path[:-1]:
                node = node.get(key, {})
            present = overlap.in_mine if choice is Choice.MINE else overlap.in_theirs
            value = overlap.mine if choice is Choice.MINE else overlap.theirs
            assert (overlap.path[-1] in node) == present
            if present:
                assert node[overlap.path[-1]] == value
        if choice is Choice.MINE:
            # Every change of mine is in the result.
            assert merge_patch(merged, conflict.my_patch) == merged
        else:
            # Every change of theirs is in the result.
            assert merge_patch(merged, conflict.their_patch) == merged
    if not conflict.overlaps:
        assert conflict.merged() == merge_patch(
            editable_part(theirs), make_patch(editable_part(base), mine)
        )
