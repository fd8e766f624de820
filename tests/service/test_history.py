"""Twin history: versions per twin, links from patch events, canonical text and diffs."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from twin_explorer.service.history import (
    TwinHistory,
    apply_event,
    canonical,
    side_by_side,
    unified_diff,
    without_metadata,
)
from twin_explorer.twin.events import Direction, PatchEvent, Section


def twin(version: int, desired: dict, *, device="d1", module=None, tags=None) -> dict:
    doc = {
        "deviceId": device,
        "etag": f"etag-{version}",
        "version": version,
        "tags": tags or {},
        "properties": {
            "desired": {
                **desired,
                "$metadata": {"$lastUpdated": f"t{version}"},
                "$version": version,
            },
            "reported": {"$metadata": {}, "$version": 1},
        },
    }
    if module:
        doc["moduleId"] = module
    return doc


def test_records_versions_per_identity_and_skips_an_unchanged_etag():
    history = TwinHistory()
    first = history.record(twin(1, {"a": 1}), time="2026-01-01T00:00:01.0000000Z")
    assert first is not None and first.seq == 1 and first.identity == "d1"
    assert history.record(twin(1, {"a": 1})) is None
    second = history.record(twin(2, {"a": 2}))
    assert second is not None and second.seq == 2
    history.record(twin(1, {}, module="m"))
    assert history.identities() == ["d1", "d1/m"]
    assert [v.seq for v in history.versions("d1")] == [1, 2]
    assert second.version == 2 and second.section_version(Section.DESIRED) == 2
    assert "version 2" in second.label and "desired $2" in second.label


def test_recorded_twins_are_copies():
    history = TwinHistory()
    doc = twin(1, {"a": 1})
    version = history.record(doc)
    doc["properties"]["desired"]["a"] = 99
    assert version is not None and version.twin["properties"]["desired"]["a"] == 1


def test_keeps_a_bounded_number_of_versions_per_twin():
    history = TwinHistory(versions_per_twin=3)
    for n in range(1, 8):
        history.record(twin(n, {"n": n}))
    assert [v.seq for v in history.versions("d1")] == [5, 6, 7]


def test_listeners_hear_each_new_version():
    history = TwinHistory()
    heard = []
    unsubscribe = history.subscribe(heard.append)
    history.record(twin(1, {}))
    history.record(twin(1, {}))
    unsubscribe()
    history.record(twin(2, {}))
    assert [v.seq for v in heard] == [1]


def test_change_for_a_linked_event_is_the_two_versions():
    history = TwinHistory()
    before = history.record(twin(1, {"a": 1}))
    after = history.record(twin(2, {"a": 2}))
    event = PatchEvent("d1", None, Direction.OBSERVED, Section.DESIRED, {"a": 2}, 2)
    history.link(event.id, before, after)
    change = history.change_for(event)
    assert change is not None and not change.inferred
    assert change.before == before.twin and change.after == after.twin


def test_change_for_an_unlinked_event_applies_it_to_the_last_version_before_it():
    history = TwinHistory()
    history.record(twin(1, {"a": 1}), time="2026-01-01T00:00:01.0000000Z")
    event = PatchEvent(
        "d1", None, Direction.SENT, Section.DESIRED, {"b": 2}, time="2026-01-01T00:00:02.0000000Z"
    )
    change = history.change_for(event)
    assert change is not None and change.inferred
    assert change.after["properties"]["desired"]["b"] == 2
    assert change.after["properties"]["desired"]["a"] == 1
    early = PatchEvent(
        "d1", None, Direction.SENT, Section.DESIRED, {}, time="2026-01-01T00:00:00.0000000Z"
    )
    assert history.change_for(early) is None
    unseen = PatchEvent("zz", None, Direction.SENT, Section.DESIRED, {})
    assert history.change_for(unseen) is None


def test_apply_event_to_each_section():
    base = twin(1, {"a": 1}, tags={"site": "x"})
    tags = PatchEvent("d1", None, Direction.SENT, Section.TAGS, {"site": None, "floor": 2})
    assert apply_event(base, tags)["tags"] == {"floor": 2}
    whole = PatchEvent(
        "d1",
        None,
        Direction.SENT,
        Section.TWIN,
        {"tags": {"k": 1}, "properties": {"desired": {"a": None}}},
    )
    result = apply_event(base, whole)
    assert result["tags"] == {"site": "x", "k": 1}
    assert "a" not in result["properties"]["desired"]
    assert base["properties"]["desired"]["a"] == 1  # the input is untouched


def test_canonical_text_is_sorted_indented_and_hides_metadata_by_default():
    doc = twin(1, {"b": 1, "a": [1, {"$metadata": "kept in lists too? no"}]})
    text = canonical(doc)
    assert "$metadata" not in text
    assert json.loads(text) == without_metadata(doc)
    assert text.index('"a"') < text.index('"b"') and text.endswith("}\n")
    assert "$metadata" in canonical(doc, metadata=True)
    assert canonical(None) == ""


def test_unified_diff_shows_the_change():
    before = canonical(twin(1, {"speed": 10}))
    after = canonical(twin(2, {"speed": 20}))
    lines = unified_diff(before, after, "#1", "#2")
    assert lines[0] == "--- #1" and lines[1] == "+++ #2"
    assert '-      "speed": 10' in lines and '+      "speed": 20' in lines
    assert unified_diff(before, before) == []


def test_side_by_side_pairs_changes_and_pads_the_other_side():
    rows = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(r.kind, r.left, r.right) for r in rows] == [
        ("same", "a", "a"),
        ("changed", "b", "B"),
        ("same", "c", "c"),
        ("added", None, "d"),
    ]
    assert rows[3].right_number == 4 and rows[3].left_number is None


lines = st.lists(st.sampled_from(["a", "b", "c", "{", "}", '"x": 1']), max_size=15)


@given(lines, lines)
def test_side_by_side_keeps_every_line_of_both_texts_in_order(left, right):
    rows = side_by_side("\n".join(left), "\n".join(right))
    assert [r.left for r in rows if r.left is not None] == left
    assert [r.right for r in rows if r.right is not None] == right


def test_a_byte_budget_drops_the_oldest_versions_across_twins_but_never_a_latest():
    history = TwinHistory(max_bytes=3_000)
    for n in range(1, 6):
        history.record(twin(n, {"blob": "x" * 400, "n": n}, device="a"))
        history.record(twin(n, {"blob": "y" * 400, "n": n}, device="b"))
    assert history.bytes <= 3_000
    kept = history.versions("a") + history.versions("b")
    assert history.bytes == sum(v.size for v in kept)
    assert history.latest("a").seq == 5 and history.latest("b").seq == 5
    assert len(kept) < 10
    tiny = TwinHistory(max_bytes=1)
    tiny.record(twin(1, {}, device="a"))
    tiny.record(twin(2, {}, device="a"))
    assert [v.seq for v in tiny.versions("a")] == [2]  # the latest stays, whatever it costs
