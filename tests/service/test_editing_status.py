"""Desired versus reported, and side-by-side diffs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.service.edit_diff import (
    CanonicalLayout,
    Change,
    changed_rows,
    diff_documents,
    opcodes,
    side_by_side,
    unified,
)
from twin_explorer.service.edit_status import SyncState, desired_vs_reported, summary
from twin_explorer.service.edit_text import canonical

TWIN = {
    "deviceId": "d1",
    "properties": {
        "desired": {
            "fan": {"speed": 3, "mode": "eco"},
            "led": True,
            "rate": 1,
            "list": [1, 2],
            "$metadata": {
                "$lastUpdated": "2026-01-02T00:00:00.000Z",
                "$lastUpdatedVersion": 4,
                "fan": {
                    "$lastUpdated": "2026-01-02T00:00:00.000Z",
                    "$lastUpdatedVersion": 4,
                    "speed": {"$lastUpdated": "2026-01-02T00:00:00Z", "$lastUpdatedVersion": 4},
                    "mode": {"$lastUpdated": "2026-01-01T00:00:00Z", "$lastUpdatedVersion": 2},
                },
                "led": {"$lastUpdated": "2026-01-01T00:00:00Z", "$lastUpdatedVersion": 2},
                "rate": {"$lastUpdated": "2026-01-01T00:00:00Z", "$lastUpdatedVersion": 3},
                "list": {"$lastUpdated": "2026-01-01T00:00:00Z", "$lastUpdatedVersion": 3},
            },
            "$version": 4,
        },
        "reported": {
            "fan": {"speed": 1, "mode": "eco"},
            "led": 1,
            "rate": 1.0,
            "$metadata": {
                "$lastUpdated": "2026-01-03T00:00:00Z",
                "fan": {
                    "$lastUpdated": "2026-01-03T00:00:00Z",
                    "speed": {"$lastUpdated": "2026-01-01T12:00:00Z"},
                    "mode": {"$lastUpdated": "2026-01-03T00:00:00Z"},
                },
                "led": {"$lastUpdated": "2026-01-03T00:00:00.5Z"},
                "rate": {"$lastUpdated": "2026-01-01T00:00:00Z"},
            },
            "$version": 9,
        },
    },
}


def test_each_desired_leaf_gets_a_state_with_times_and_versions():
    rows = {row.label: row for row in desired_vs_reported(TWIN)}
    assert list(rows) == ["fan.speed", "fan.mode", "led", "rate", "list"]
    speed = rows["fan.speed"]
    assert speed.state is SyncState.PENDING and (speed.desired, speed.reported) == (3, 1)
    assert speed.desired_updated == "2026-01-02T00:00:00Z" and speed.desired_version == 4
    assert speed.reported_updated == "2026-01-01T12:00:00Z" and speed.reported_version == 9
    assert "not reported this value yet" in speed.note
    mode = rows["fan.mode"]
    assert mode.state is SyncState.MATCHING and mode.desired_version == 2
    # true is not 1; the device reported after the desired change, with another value
    assert rows["led"].state is SyncState.PENDING
    assert "after this desired change" in rows["led"].note
    assert rows["rate"].state is SyncState.MATCHING  # 1 and 1.0 are the same number
    never = rows["list"]
    assert (
        never.state is SyncState.NEVER and never.reported is None and never.reported_updated is None
    )
    assert summary(list(rows.values())) == {
        SyncState.MATCHING: 2,
        SyncState.PENDING: 2,
        SyncState.NEVER: 1,
    }


def test_a_twin_without_desired_has_no_rows():
    assert desired_vs_reported({"deviceId": "d1"}) == []


def test_side_by_side_aligns_rows_and_ignores_key_order():
    rows = diff_documents({"b": 1, "a": 1, "c": 3}, {"a": 1, "b": 2, "d": 4, "c": 3})
    assert [r.change for r in rows].count(Change.EQUAL) >= 3
    changed = [r for r in rows if r.change is not Change.EQUAL]
    assert any(r.left and r.right and '"b": 1' in r.left and '"b": 2' in r.right for r in changed)
    assert any(r.right and '"d": 4' in r.right for r in changed)
    assert diff_documents({"a": 1, "b": 2}, {"b": 2, "a": 1}) == side_by_side(
        '{\n  "a": 1,\n  "b": 2\n}', '{\n  "a": 1,\n  "b": 2\n}'
    )
    assert changed_rows(diff_documents({"a": 1, "b": 2}, {"b": 2, "a": 1})) == 0


def test_side_by_side_pads_the_shorter_side():
    rows = side_by_side("a\nb\nc", "a\nc\nd\ne")
    assert [(r.left, r.right, r.change) for r in rows] == [
        ("a", "a", Change.EQUAL),
        ("b", None, Change.REMOVED),
        ("c", "c", Change.EQUAL),
        (None, "d", Change.ADDED),
        (None, "e", Change.ADDED),
    ]
    assert [(r.left_line, r.right_line) for r in rows] == [
        (1, 1),
        (2, None),
        (3, 2),
        (None, 3),
        (None, 4),
    ]


def test_unified_diff_names_both_sides():
    text = unified({"a": 1}, {"a": 2})
    assert text.startswith("--- hub\n+++ editor")
    assert '-  "a": 1' in text and '+  "a": 2' in text
    assert unified({"a": 1}, {"a": 1}) == ""


lines = st.lists(
    st.sampled_from(["{", "}", "},", '"a": 1,', '"b": 2', '"c": {', "[", "]", '"x"']), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(lines, lines)
def test_opcodes_cover_both_sides_and_rebuild_the_right(a, b):
    ops = opcodes(a, b)
    rebuilt: list[str] = []
    i = j = 0
    for tag, i1, i2, j1, j2 in ops:
        assert (i1, j1) == (i, j)  # contiguous, in order
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]
        else:
            assert tag in ("replace", "delete", "insert") and (i2 > i1 or j2 > j1)
        rebuilt.extend(b[j1:j2])
        i, j = i2, j2
    assert (i, j) == (len(a), len(b)) and rebuilt == b
    for first, second in itertools.pairwise(ops):  # neighbours are merged
        assert (first[0] == "equal") != (second[0] == "equal")


def test_patience_aligns_moved_keys_by_their_unique_lines():
    left = ['"a": {', '"x": 1', "},", '"b": {', '"x": 2', "}"]
    right = ['"a": {', '"x": 1', "},", '"b": {', '"x": 3', "}"]
    assert [op[0] for op in opcodes(left, right)] == ["equal", "replace", "equal"]


json_docs = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text('ab"\\é', max_size=3),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("abc", max_size=2), children, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(json_docs, json_docs)
def test_the_reusing_layout_is_the_canonical_layout(first, second):
    layout = CanonicalLayout()
    for doc in (first, second, {"tags": first, "properties": {"desired": second}}, first):
        assert layout.lines(doc) == canonical(doc).splitlines()
