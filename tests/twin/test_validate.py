from __future__ import annotations

import pytest

from twin_explorer.twin import limits
from twin_explorer.twin.errors import InvalidTwin, TwinIssue
from twin_explorer.twin.validate import MAX_ISSUES, MAX_NESTING, validate_section


def codes(issues: list[TwinIssue]) -> list[str]:
    return [issue.code for issue in issues]


def nested(levels: int, leaf: object = "value") -> dict:
    """The documentation's example shape: ``levels`` objects below the root, then a leaf."""
    doc: object = {"property": leaf}
    for index in range(levels, 1, -1):
        doc = {f"k{index}": doc}
    return {"k1": doc}


def test_valid_section_has_no_issues():
    doc = {
        "str": "x",
        "int": 3,
        "float": 2.5,
        "bool": False,
        "obj": {"inner": {"list": [1, "a", None, {"x": None}, [True]]}},
        "empty": {},
        "ünïcödé_-:+%#*?!(),=@;'": 1,
    }
    for section in ("tags", "desired", "reported"):
        assert validate_section(section, doc) == []


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("a.b", "'.'"),
        ("a b", "' ' (space)"),
        ("a$b", "'$'"),
        ("tab\there", "control character U+0009"),
        ("nul\x00", "control character U+0000"),
        ("del\x7f", "control character U+007F"),
        ("c1\x85", "control character U+0085"),
        ("c1end\x9f", "control character U+009F"),
    ],
)
def test_forbidden_characters_in_keys(key, shown):
    issues = validate_section("desired", {"outer": {key: 1}})
    assert codes(issues) == ["forbidden-char"]
    assert issues[0].path == ("desired", "outer", key)
    assert shown in issues[0].message
    assert "desired.outer" in issues[0].message


def test_forbidden_char_message_names_the_key():
    [issue] = validate_section("desired", {"a.b": 1})
    assert issue.message == (
        "key 'a.b' in desired contains '.', which IoT Hub does not allow in property names"
    )


def test_characters_next_to_control_ranges_are_allowed():
    doc = {"nbsp\xa0": 1, "tilde~": 2, "uA0\u00a0x": 3, "emoji😀": 4}
    assert validate_section("tags", doc) == []


def test_several_forbidden_characters_in_one_issue():
    [issue] = validate_section("tags", {"a. b.": 1})
    assert issue.code == "forbidden-char"
    assert "'.' and ' ' (space)" in issue.message


def test_empty_key():
    [issue] = validate_section("tags", {"a": {"": 1}})
    assert issue.code == "empty-key"
    assert issue.path == ("tags", "a", "")


def test_reserved_keys():
    issues = validate_section("desired", {"$foo": 1, "a": {"$metadata": {}, "$version": 1}})
    assert codes(issues) == ["reserved-key", "reserved-key", "reserved-key"]
    assert [i.path for i in issues] == [
        ("desired", "$foo"),
        ("desired", "a", "$metadata"),
        ("desired", "a", "$version"),
    ]
    assert "'$foo'" in issues[0].message


def test_bookkeeping_keys_at_root_are_skipped():
    doc = {"$metadata": {"$lastUpdated": "x", "a.b": "ignored"}, "$version": 7, "ok": 1}
    for section in ("tags", "desired", "reported"):
        assert validate_section(section, doc) == []


def test_reserved_key_with_other_bad_characters():
    issues = validate_section("tags", {"$a.b": 1})
    assert codes(issues) == ["reserved-key", "forbidden-char"]
    assert "'.'" in issues[1].message and "'$'" not in issues[1].message


def test_key_length_limit_in_utf8_bytes():
    at_limit = "k" * limits.KEY_MAX_BYTES
    assert validate_section("tags", {at_limit: 1}) == []
    [issue] = validate_section("tags", {at_limit + "k": 1})
    assert issue.code == "key-too-long"
    assert "1025 bytes" in issue.message
    # 'é' is 2 bytes in UTF-8: 512 of them are exactly 1 KB, 513 are over.
    assert validate_section("tags", {"é" * 512: 1}) == []
    assert codes(validate_section("tags", {"é" * 513: 1})) == ["key-too-long"]


def test_long_key_is_shortened_in_message():
    [issue] = validate_section("tags", {"k" * 2000: 1})
    assert len(issue.message) < 200
    assert issue.path == ("tags", "k" * 2000)


def test_depth_exactly_ten_passes_and_eleven_fails():
    # The documentation's valid example: one..ten are objects, "property" a leaf in ten.
    assert validate_section("tags", nested(10)) == []
    issues = validate_section("tags", nested(11))
    assert codes(issues) == ["too-deep"]
    assert issues[0].path == ("tags", *(f"k{i}" for i in range(1, 12)))
    assert "11 levels" in issues[0].message


def test_empty_object_at_level_eleven_fails():
    assert codes(validate_section("desired", nested(10, leaf={}))) == ["too-deep"]
    assert validate_section("desired", nested(9, leaf={})) == []


def test_arrays_add_no_level_but_objects_inside_them_do():
    # Level 10 object holding an array of scalars and arrays: fine.
    assert validate_section("reported", nested(10, leaf=[[1, [2]], "x"])) == []
    # Level 10 object holding an array with an object: that object is level 11.
    issues = validate_section("reported", nested(10, leaf=[1, {"a": 1}]))
    assert codes(issues) == ["too-deep"]
    assert issues[0].path[-2:] == ("property", "1")
    assert "property[1]" in issues[0].message


def test_pathological_array_nesting_is_refused_without_recursion_error():
    value: object = 1
    for _ in range(MAX_NESTING + 5):
        value = [value]
    assert codes(validate_section("tags", {"a": value})) == ["too-deep"]


def test_integer_range_boundaries():
    ok = {"min": limits.INT_MIN, "max": limits.INT_MAX, "zero": 0}
    assert validate_section("desired", ok) == []
    issues = validate_section("desired", {"lo": limits.INT_MIN - 1, "hi": limits.INT_MAX + 1})
    assert codes(issues) == ["int-range", "int-range"]
    assert issues[0].path == ("desired", "lo")
    assert "desired.hi" in issues[1].message


def test_integers_inside_arrays_are_checked():
    [issue] = validate_section("desired", {"l": [1, 2**53]})
    assert issue.code == "int-range"
    assert issue.path == ("desired", "l", "1")
    assert all(type(part) is str for part in issue.path)
    assert "desired.l[1]" in issue.message


def test_floats_are_not_range_checked_but_must_be_finite():
    assert validate_section("desired", {"f": 1e300, "g": -1e300, "h": 2.0**60}) == []
    issues = validate_section("desired", {"nan": float("nan"), "inf": float("inf")})
    assert codes(issues) == ["invalid-json-type", "invalid-json-type"]


def test_string_length_in_utf8_bytes():
    assert validate_section("tags", {"s": "x" * limits.STRING_MAX_BYTES}) == []
    [issue] = validate_section("tags", {"s": "x" * (limits.STRING_MAX_BYTES + 1)})
    assert issue.code == "string-too-long"
    assert issue.path == ("tags", "s")
    assert "tags.s" in issue.message and "4097 bytes" in issue.message
    # '€' is 3 bytes: 1365 of them are 4095 bytes, 1366 are 4098.
    assert validate_section("tags", {"s": "€" * 1365 + "x"}) == []
    assert codes(validate_section("tags", {"s": "€" * 1366})) == ["string-too-long"]


def test_lone_surrogates_do_not_crash():
    assert validate_section("tags", {"s": "\ud800", "k\udfff": 1}) == []


def test_null_members_only_in_patches():
    doc = {"a": None, "o": {"b": None}}
    issues = validate_section("desired", doc)
    assert codes(issues) == ["invalid-json-type", "invalid-json-type"]
    assert "desired.a is null" in issues[0].message
    assert validate_section("desired", doc, patch=True) == []


def test_null_inside_arrays_always_allowed():
    doc = {"l": [None, {"x": None}, [None]]}
    assert validate_section("reported", doc) == []
    assert validate_section("reported", doc, patch=True) == []


def test_non_json_python_values():
    issues = validate_section("tags", {"t": (1, 2), "s": {1}, "b": b"x", 5: "int key"})
    assert codes(issues) == ["invalid-json-type"] * 4
    assert "tuple" in issues[0].message


def test_not_an_object():
    for value in ([], "x", 1, None, True):
        [issue] = validate_section("desired", value)
        assert issue.code == "not-object"
        assert issue.path == ("desired",)


def test_unknown_section_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown twin section"):
        validate_section("properties", {})  # type: ignore[arg-type]


def test_all_issues_are_returned_not_just_the_first():
    doc = {"a.b": 1, "c d": {"e$": 2**60}, "f": "x" * 5000, "$g": None}
    issues = validate_section("desired", doc)
    assert codes(issues) == [
        "forbidden-char",
        "forbidden-char",
        "forbidden-char",
        "int-range",
        "string-too-long",
        "reserved-key",
        "invalid-json-type",
    ]


def test_issue_count_is_bounded():
    doc = {f"bad.{i}": 1 for i in range(500)}
    assert len(validate_section("tags", doc)) == MAX_ISSUES


def test_size_is_checked_for_full_documents_only():
    big = {f"k{i}": "x" * 1000 for i in range(9)}  # 9 * (2 + 1000) > 8 KB
    [issue] = validate_section("tags", big)
    assert issue.code == "too-large"
    assert issue.path == ("tags",)
    assert validate_section("tags", big, patch=True) == []


def test_invalid_twin_str_lists_first_issues():
    issues = validate_section("tags", {f"bad.{i}": 1 for i in range(5)})
    error = InvalidTwin(issues)
    text = str(error)
    assert "bad.0" in text and "bad.2" in text and "bad.3" not in text
    assert text.endswith("(and 2 more issues)")
    assert error.issues == issues
    assert isinstance(error, ValueError)
    assert str(InvalidTwin(issues[:1])) == issues[0].message
