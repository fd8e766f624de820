from __future__ import annotations

from twin_explorer.twin import limits
from twin_explorer.twin.validate import check_size, counted_bytes, section_size


def test_counted_bytes_excludes_control_characters():
    assert counted_bytes("abc") == 3
    assert counted_bytes("é") == 2
    assert counted_bytes("€") == 3
    assert counted_bytes("😀") == 4
    assert counted_bytes("a\tb\nc") == 3
    assert counted_bytes("\x7f") == 0  # DEL, 1 byte
    assert counted_bytes("x\x85y") == 2  # NEL (C1), 2 bytes in UTF-8
    assert counted_bytes("\xa0") == 2  # NBSP is not a control character


def test_value_sizes():
    assert section_size({}) == 0
    assert section_size({"a": "xyz"}) == 1 + 3
    assert section_size({"a": 1}) == 1 + 8
    assert section_size({"a": 1.5}) == 1 + 8
    assert section_size({"a": True}) == 1 + 4
    assert section_size({"a": False}) == 1 + 4
    assert section_size({"ab": {"c": 1, "d": "ee"}}) == 2 + (1 + 8) + (1 + 2)
    assert section_size({"a": {}}) == 1
    assert section_size({"a": [1, "xy", True, None, [2], {"k": "v"}]}) == 1 + 8 + 2 + 4 + 4 + 8 + 2


def test_keys_and_strings_count_utf8_without_controls():
    assert section_size({"ключ": "значение"}) == 8 + 16
    assert section_size({"k": "line1\nline2"}) == 1 + 10


def test_bookkeeping_keys_do_not_count():
    doc = {"a": 1, "$metadata": {"$lastUpdated": "2024-01-01T00:00:00Z"}, "$version": 5}
    assert section_size(doc) == 9


def test_check_size_boundaries():
    # One key "k" plus a string: 1 + n bytes.
    for section, limit in limits.SECTION_MAX_BYTES.items():
        exact = {"k": "x" * (limit - 1)}
        over = {"k": "x" * limit}
        assert section_size(exact) == limit
        assert check_size(section, exact) is None
        issue = check_size(section, over)
        assert issue is not None
        assert issue.code == "too-large"
        assert issue.path == (section,)
        assert f"{limit + 1} bytes" in issue.message and str(limit) in issue.message


def test_tags_limit_is_8kb_properties_32kb():
    doc = {f"k{i:02d}": "x" * 997 for i in range(9)}  # 9 * 1000 bytes
    assert section_size(doc) == 9000
    assert check_size("tags", doc) is not None
    assert check_size("desired", doc) is None
    assert check_size("reported", doc) is None
