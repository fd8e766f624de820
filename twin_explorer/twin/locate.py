"""Find where a key sits in JSON source text, so the editor can mark an issue's line.

A small scanner over the text (strings decoded with the stdlib's ``scanstring``), so
positions are exact and a document that is broken further down still yields the keys
before the break. With duplicate keys the last one counts, as ``json.loads`` does.
"""

from __future__ import annotations

import re
from json.decoder import scanstring

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
# The literals json.loads accepts (it allows NaN and Infinity by default).
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")


class _Broken(Exception):
    """The text stops being JSON here."""


def locate(text: str, path: tuple[str, ...]) -> tuple[int, int] | None:
    """(line, column), both 1-based, of the key at ``path`` in ``text``; None if absent.

    ``path`` holds keys from the text's root; for arrays give the element's decimal index
    and get the element's position. An empty path gives the root value's position.
    Columns count characters (code points), not bytes.
    """
    offset = locate_offset(text, path)
    if offset is None:
        return None
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def path_in_twin(issue_path: tuple[str, ...]) -> tuple[str, ...]:
    """Turn a TwinIssue path (section first) into a path within a whole service-view twin."""
    if issue_path and issue_path[0] in ("desired", "reported"):
        return ("properties", *issue_path)
    return issue_path


def locate_offset(text: str, path: tuple[str, ...]) -> int | None:
    """Like ``locate`` but as a 0-based character offset into ``text``."""
    pos = _WS.match(text, 0).end()
    if pos >= len(text):
        return None
    found = pos
    for step in path:
        opener = text[pos] if pos < len(text) else ""
        if opener == "{":
            hit = _find_member(text, pos, step)
        elif opener == "[" and step.isdigit():
            hit = _find_element(text, pos, int(step))
        else:
            return None
        if hit is None:
            return None
        found, pos = hit
    return found


def _find_member(text: str, pos: int, key: str) -> tuple[int, int] | None:
    """(key offset, value offset) of the last member named ``key`` of the object at ``pos``."""
    last = None
    try:
        pos = _ws(text, pos + 1)
        if text[pos] == "}":
            return None
        while True:
            if text[pos] != '"':
                raise _Broken
            name, end = scanstring(text, pos + 1, False)
            end = _ws(text, end)
            if text[end] != ":":
                raise _Broken
            value_pos = _ws(text, end + 1)
            if name == key:
                last = (pos, value_pos)
            pos = _next_item(text, _skip_value(text, value_pos), "}")
            if pos is None:
                return last
    except (_Broken, ValueError, IndexError, RecursionError):
        return last


def _find_element(text: str, pos: int, index: int) -> tuple[int, int] | None:
    """(offset, offset) of element ``index`` of the array at ``pos``."""
    try:
        pos = _ws(text, pos + 1)
        if text[pos] == "]":
            return None
        for _ in range(index):
            pos = _next_item(text, _skip_value(text, pos), "]")
            if pos is None:
                return None
        return (pos, pos) if pos < len(text) else None
    except (_Broken, ValueError, IndexError, RecursionError):
        return None


def _next_item(text: str, pos: int, closer: str) -> int | None:
    """After a value: the start of the next item, or None at the container's end."""
    pos = _ws(text, pos)
    if text[pos] == ",":
        return _ws(text, pos + 1)
    if text[pos] == closer:
        return None
    raise _Broken


def _skip_value(text: str, pos: int) -> int:
    """The offset just past the JSON value starting at ``pos``."""
    char = text[pos]
    if char == '"':
        return scanstring(text, pos + 1, False)[1]
    if char in "{[":
        closer = "}" if char == "{" else "]"
        item: int | None = _ws(text, pos + 1)
        if text[item] == closer:
            return item + 1
        while item is not None:
            if char == "{":
                if text[item] != '"':
                    raise _Broken
                item = _ws(text, scanstring(text, item + 1, False)[1])
                if text[item] != ":":
                    raise _Broken
                item = _ws(text, item + 1)
            end = _skip_value(text, item)
            item = _next_item(text, end, closer)
        return _ws(text, end) + 1
    for literal in _LITERALS:
        if text.startswith(literal, pos):
            return pos + len(literal)
    match = _NUMBER.match(text, pos)
    if match is None:
        raise _Broken
    return match.end()


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()
