"""The editor's text: editable and read-only halves, and every issue at its place."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.service.edit_text import (
    KeyIndex,
    Severity,
    editable_part,
    pretty,
    readonly_part,
    validate_text,
)
from twin_explorer.twin.limits import DESIRED_MAX_BYTES
from twin_explorer.twin.locate import locate_offset

TWIN = {
    "deviceId": "d1",
    "moduleId": "m1",
    "etag": "AAAAAAAAAAM=",
    "version": 3,
    "status": "enabled",
    "tags": {"site": "lab"},
    "properties": {
        "desired": {
            "fan": {"speed": 3},
            "$metadata": {"$lastUpdated": "2026-01-01T00:00:00Z", "$lastUpdatedVersion": 2},
            "$version": 2,
        },
        "reported": {"fan": {"speed": 1}, "$metadata": {}, "$version": 4},
    },
}


def _doc(tags: dict | None = None, desired: dict | None = None) -> str:
    return pretty({"tags": tags or {}, "properties": {"desired": desired or {}}})


def _only(text: str, code: str):
    issues = [i for i in validate_text(text).issues if i.code == code]
    assert len(issues) == 1, validate_text(text).issues
    return issues[0]


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_editable_part_is_tags_and_desired_without_bookkeeping():
    assert editable_part(TWIN) == {
        "tags": {"site": "lab"},
        "properties": {"desired": {"fan": {"speed": 3}}},
    }
    rest = readonly_part(TWIN)
    assert "tags" not in rest
    assert rest["etag"] == "AAAAAAAAAAM=" and rest["deviceId"] == "d1"
    assert rest["properties"]["reported"]["fan"] == {"speed": 1}
    assert rest["properties"]["desired"] == {
        "$version": 2,
        "$metadata": TWIN["properties"]["desired"]["$metadata"],
    }
    assert "fan" not in rest["properties"]["desired"]


def test_a_valid_text_is_ok_and_sized_as_the_hub_counts():
    result = validate_text(pretty(editable_part(TWIN)))
    assert result.ok and result.issues == ()
    assert result.sizes == {
        "tags": len("site") + len("lab"),
        "desired": len("fan") + len("speed") + 8,
    }


def test_a_missing_comma_is_reported_at_its_line_and_column():
    text = '{\n  "tags": {"a": 1\n  "b": 2},\n  "properties": {"desired": {}}\n}'
    (issue,) = validate_text(text).issues
    assert (issue.line, issue.column) == (3, 3)
    assert "comma is missing" in issue.message
    assert not validate_text(text).ok and validate_text(text).document is None


def test_a_trailing_comma_is_named_as_such_at_the_comma():
    text = '{\n  "tags": {"a": 1,\n  },\n  "properties": {"desired": {}}\n}'
    (issue,) = validate_text(text).issues
    assert (issue.line, issue.column) == (2, 18)
    assert "trailing comma" in issue.message


def test_an_unterminated_string_and_extra_data():
    issue = validate_text('{"tags": {"a": "oops}}').issues[0]
    assert "no closing" in issue.message and issue.column == 16
    issue = validate_text(_doc() + "\n}").issues[0]
    assert "after the end" in issue.message and issue.line == _doc().count("\n") + 2


def test_forbidden_key_characters_are_marked_on_the_key():
    for key, code in (
        ("a$b", "forbidden-char"),
        ("$a", "reserved-key"),
        ("a.b", "forbidden-char"),
        ("a b", "forbidden-char"),
    ):
        text = _doc(desired={"ok": 1, "nested": {key: 1}})
        issue = _only(text, code)
        assert issue.line == _line_of(text, f'"{key}"')
        assert text[issue.offset : issue.offset + issue.length] == json.dumps(key)
        assert issue.path == ("properties", "desired", "nested", key)
        assert not validate_text(text).ok


def test_depth_eleven_is_marked_at_the_eleventh_object():
    node: dict = {"leaf": 1}
    for level in range(11, 0, -1):
        node = {f"l{level}": node}
    text = _doc(desired=node)
    issue = _only(text, "too-deep")
    assert issue.line == _line_of(text, '"l11"')
    assert "11 levels" in issue.message


def test_ten_levels_are_fine():
    node: dict = {"leaf": 1}
    for level in range(10, 0, -1):
        node = {f"l{level}": node}
    assert validate_text(_doc(desired=node)).ok


def test_an_oversize_desired_section_is_marked_at_desired():
    text = _doc(tags={"t": 1}, desired={f"k{i:03}": "x" * 1000 for i in range(33)})
    issue = _only(text, "too-large")
    assert issue.line == _line_of(text, '"desired"')
    assert str(DESIRED_MAX_BYTES) in issue.message
    result = validate_text(text)
    assert not result.ok and result.sizes["desired"] > DESIRED_MAX_BYTES


def test_null_is_refused_with_a_way_out():
    text = _doc(tags={"gone": None})
    issue = _only(text, "invalid-json-type")
    assert issue.line == _line_of(text, '"gone"')
    assert "remove it from the text" in issue.message


def test_read_only_fields_in_the_text_are_errors_at_their_key():
    text = pretty(
        {"deviceId": "d1", "tags": {}, "properties": {"desired": {"$version": 3}, "reported": {}}}
    )
    issues = validate_text(text).issues
    assert {i.path for i in issues} == {
        ("deviceId",),
        ("properties", "desired", "$version"),
        ("properties", "reported"),
    }
    assert all(i.severity is Severity.ERROR for i in issues)
    reported = next(i for i in issues if i.path == ("properties", "reported"))
    assert reported.line == _line_of(text, '"reported"') and "read-only" in reported.message


def test_the_shape_is_required():
    assert "tags is missing" in validate_text('{"properties": {"desired": {}}}').issues[0].message
    assert not validate_text('{"tags": [], "properties": {"desired": {}}}').ok
    assert not validate_text('{"tags": {}, "properties": {}}').ok
    assert not validate_text("[1, 2]").ok


def test_a_duplicate_key_warns_but_does_not_block():
    text = '{"tags": {"a": 1, "a": 2}, "properties": {"desired": {}}}'
    result = validate_text(text)
    (issue,) = result.issues
    assert issue.severity is Severity.WARNING and issue.code == "duplicate-key"
    assert issue.offset == text.rindex('"a"')
    assert result.ok and result.document == {"tags": {"a": 2}, "properties": {"desired": {}}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, str(index)))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4), st.sampled_from([None, 2]))
def test_the_key_index_agrees_with_twin_locate(doc, indent):
    text = json.dumps(doc, indent=indent, ensure_ascii=indent is None)
    index = KeyIndex(text)
    for path in _paths(doc):
        spot = index.get(path)
        assert spot is not None, path
        assert spot[0] == locate_offset(text, path), path
