from __future__ import annotations

import json

from hypothesis import given

from tests.twin.strategies import documents
from twin_explorer.twin.locate import locate, locate_offset, path_in_twin
from twin_explorer.twin.validate import validate_section

TEXT = """{
  "deviceId": "d1",
  "tags": {"site": "a", "nested": {"k": 1}},
  "properties": {
    "desired": {
      "list": [10, {"inner": true}, [1, 2]],
      "esc\\u0061ped": "x",
      "str\\"q": {"deep": null}
    }
  }
}"""


def test_locates_keys_by_line_and_column():
    assert locate(TEXT, ("deviceId",)) == (2, 3)
    assert locate(TEXT, ("tags", "site")) == (3, 12)
    assert locate(TEXT, ("tags", "nested", "k")) == (3, 36)
    assert locate(TEXT, ("properties", "desired")) == (5, 5)


def test_array_elements_by_index():
    assert locate(TEXT, ("properties", "desired", "list", "0")) == (6, 16)
    assert locate(TEXT, ("properties", "desired", "list", "1", "inner")) == (6, 21)
    assert locate(TEXT, ("properties", "desired", "list", "2", "1")) == (6, 41)
    assert locate(TEXT, ("properties", "desired", "list", "3")) is None
    assert locate(TEXT, ("properties", "desired", "list", "x")) is None


def test_escaped_keys_compare_decoded():
    assert locate(TEXT, ("properties", "desired", "escaped")) == (7, 7)
    assert locate(TEXT, ("properties", "desired", 'str"q', "deep")) == (8, 18)


def test_missing_paths():
    assert locate(TEXT, ("nope",)) is None
    assert locate(TEXT, ("deviceId", "x")) is None  # a string has no members
    assert locate(TEXT, ("tags", "site", "x")) is None
    assert locate("", ("a",)) is None
    assert locate("   ", ()) is None
    assert locate("{}", ("a",)) is None
    assert locate("[]", ("0",)) is None


def test_empty_path_is_the_root_value():
    assert locate("\n\n  {}", ()) == (3, 3)


def test_duplicate_keys_last_one_wins_like_json_loads():
    text = '{"a": 1, "b": {"x": 1}, "a": {"c": 2}}'
    assert json.loads(text)["a"] == {"c": 2}
    assert locate_offset(text, ("a",)) == text.rindex('"a"')
    assert locate_offset(text, ("a", "c")) == text.index('"c"')


def test_broken_text_still_locates_keys_before_the_break():
    text = '{\n  "a": 1,\n  "b": {"c": [1, 2}, \n  "d": oops'
    assert locate(text, ("a",)) == (2, 3)
    assert locate(text, ("b",)) == (3, 3)
    assert locate(text, ("d",)) is None


def test_columns_count_characters_and_crlf():
    text = '{"ключ": {"é": 1},\r\n "x": 2}'
    assert locate(text, ("ключ", "é")) == (1, 11)
    assert locate(text, ("x",)) == (2, 2)


def test_literals_and_numbers_are_skipped():
    text = '{"a": [true, false, null, -1.5e3, NaN, -Infinity, Infinity, "s"], "b": 0}'
    assert locate_offset(text, ("b",)) == text.index('"b"')
    assert locate_offset(text, ("a", "7")) == text.index('"s"')


def test_path_in_twin_maps_sections():
    assert path_in_twin(("desired", "a")) == ("properties", "desired", "a")
    assert path_in_twin(("reported",)) == ("properties", "reported")
    assert path_in_twin(("tags", "x")) == ("tags", "x")


def test_issue_path_finds_its_line_in_a_twin():
    twin = {"tags": {}, "properties": {"desired": {"ok": 1, "cfg": {"bad.key": 1}}}}
    text = json.dumps(twin, indent=2)
    [issue] = validate_section("desired", twin["properties"]["desired"])
    line, _ = locate(text, path_in_twin(issue.path))
    assert '"bad.key"' in text.splitlines()[line - 1]


@given(documents)
def test_every_key_of_a_document_is_found(doc):
    text = json.dumps({"root": doc}, indent=1, ensure_ascii=False)

    def walk(value, path):
        if isinstance(value, dict):
            for key, child in value.items():
                yield (*path, key), f'"{key}"'
                yield from walk(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                yield from walk(child, (*path, str(index)))

    for path, token in walk({"root": doc}, ()):
        offset = locate_offset(text, path)
        assert offset is not None, path
        assert text.startswith(token, offset), (path, text[offset : offset + 20])
