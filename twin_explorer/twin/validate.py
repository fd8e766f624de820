"""IoT Hub's rules for tags, desired and reported properties (reference C.6).

Decisions where the documentation leaves room, each checked by a test:

* **Control characters** are those of Unicode category Cc: C0 (U+0000-U+001F), DEL
  (U+007F) and C1 (U+0080-U+009F). The hub is a .NET service and ``char.IsControl`` draws
  the line there. They are forbidden in keys and not counted in sizes.
* **Depth** counts JSON object levels *below* the section root, which itself is level 0.
  The documentation's valid example is ``tags.one.two. ... .ten.property``: the object
  under ``ten`` is level 10, so ``ten`` may hold plain values but an object inside it
  (level 11) is refused. Arrays add no level; an object inside an array is one level
  deeper than the object holding the array. Separately, any nesting of more than 64
  containers (objects and arrays together) is refused, so hostile input cannot exhaust
  the stack.
* **null**: a stored section never holds a null member (null means "delete" in a merge
  patch), so null object members are allowed only with ``patch=True``. Inside arrays, which
  are opaque values that travel whole, null is an ordinary value and always allowed.
* **Arrays** are allowed (the current documentation supports them) and may hold any JSON
  value; keys of objects inside arrays follow the same key rules.
* **Sizes** (``section_size``): a key counts its UTF-8 bytes without control characters;
  a string value the same; numbers 8; booleans 4; null 4 (the documentation is silent;
  counting it like a boolean keeps arrays of nulls bounded); objects and arrays the sum of
  their contents. ``$metadata`` and ``$version`` at the section root do not count.
* **Strings** and **keys** are measured in UTF-8 bytes (all bytes, control characters
  included) against the 4 KB and 1 KB limits.
* ``$metadata`` and ``$version`` at the section root are read-only bookkeeping and skipped;
  any other key starting with ``$``, at any level, is a ``reserved-key`` issue.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from twin_explorer.twin import limits
from twin_explorer.twin.errors import TwinIssue

Section = Literal["tags", "desired", "reported"]

# At most this many issues are collected; a broken paste should not produce thousands.
MAX_ISSUES = 100
# Containers (objects + arrays) nested deeper than this are refused outright.
MAX_NESTING = 64
# Bytes counted for a null inside an array (see module docstring).
NULL_SIZE = 4

_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
_FORBIDDEN_RE = re.compile("[\x00-\x1f\x7f-\x9f. $]")


def _utf8_len(text: str) -> int:
    if text.isascii():
        return len(text)
    # surrogatepass: json.loads accepts lone surrogate escapes; measure them, don't crash.
    return len(text.encode("utf-8", "surrogatepass"))


def counted_bytes(text: str) -> int:
    """UTF-8 length of ``text`` without its control characters, as IoT Hub sizes strings."""
    if text.isascii() and text.isprintable():  # the common case, and cheap
        return len(text)
    size = _utf8_len(text)
    for ch in _CONTROL_RE.findall(text):
        size -= 1 if ch < "\x80" else 2
    return size


def section_size(doc: dict) -> int:
    """The size of a section as IoT Hub counts it against the 8 KB / 32 KB limits."""
    return sum(
        counted_bytes(key) + _value_size(value)
        for key, value in doc.items()
        if key not in limits.BOOKKEEPING_KEYS and isinstance(key, str)
    )


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return counted_bytes(value)
    if isinstance(value, bool):
        return 4
    if value is None:
        return NULL_SIZE
    if isinstance(value, int | float):
        return 8
    if isinstance(value, dict):
        return sum(
            counted_bytes(k) + _value_size(v) for k, v in value.items() if isinstance(k, str)
        )
    if isinstance(value, list):
        return sum(_value_size(v) for v in value)
    return 0


def check_size(section: Section, merged_doc: dict) -> TwinIssue | None:
    """An issue if ``merged_doc`` is over the section's size limit, else None."""
    size = section_size(merged_doc)
    limit = limits.SECTION_MAX_BYTES[section]
    if size <= limit:
        return None
    return TwinIssue(
        (section,),
        f"{section} would be {size} bytes as IoT Hub counts them; the limit is {limit} bytes",
        "too-large",
    )


def validate_section(section: Section, doc: Any, *, patch: bool = False) -> list[TwinIssue]:
    """Every rule ``doc`` breaks (at most MAX_ISSUES), as issues; empty when it is valid.

    With ``patch=True`` the doc is a merge patch: null members are allowed (they delete)
    and the size is not checked here. Check the merged result with ``check_size`` instead.
    """
    if section not in limits.SECTION_MAX_BYTES:
        raise ValueError(f"unknown twin section {section!r}")
    if not isinstance(doc, dict):
        return [
            TwinIssue(
                (section,),
                f"{section} must be a JSON object, not {_json_type(doc)}",
                "not-object",
            )
        ]
    checker = _Checker(section, patch)
    try:
        checker.object(doc, level=0, nesting=1, in_array=False)
    except _Enough:
        return checker.issues
    if not patch and not any(i.code == "too-deep" for i in checker.issues):
        issue = check_size(section, doc)
        if issue is not None:
            checker.issues.append(issue)
    return checker.issues[:MAX_ISSUES]


class _Enough(Exception):
    """Raised once MAX_ISSUES issues are collected."""


class _Index(str):
    """An array index in the path being walked (formatted as ``[n]`` in messages)."""


class _Checker:
    """Walks one section; ``self.path`` is the stack of keys from the section down."""

    def __init__(self, section: str, patch: bool) -> None:
        self.patch = patch
        self.path: list[str] = [section]
        self.issues: list[TwinIssue] = []

    def where(self) -> str:
        parts = (f"[{p}]" if isinstance(p, _Index) else f".{_shown(p)}" for p in self.path)
        return "".join(parts)[1:]

    def issue(self, message: str, code: str) -> None:
        # Plain str() so that no _Index leaks into the public path.
        self.issues.append(TwinIssue(tuple(str(p) for p in self.path), message, code))
        if len(self.issues) >= MAX_ISSUES:
            raise _Enough

    def object(self, obj: dict, level: int, nesting: int, in_array: bool) -> None:
        path = self.path
        for key, value in obj.items():
            if not isinstance(key, str):
                self.issue(
                    f"{self.where()} has a key {key!r} that is not a string", "invalid-json-type"
                )
                continue
            if level == 0 and key in limits.BOOKKEEPING_KEYS:
                continue
            if not _key_looks_fine(key):
                self.key(key)
            path.append(key)
            self.value(value, level, nesting, in_array, member=True)
            path.pop()

    def key(self, key: str) -> None:
        where = self.where()
        self.path.append(key)
        try:
            self._key(key, where)
        finally:
            self.path.pop()

    def _key(self, key: str, where: str) -> None:
        if not key:
            self.issue(f"{where} has an empty key, which IoT Hub does not allow", "empty-key")
            return
        rest = key
        if key.startswith("$"):
            self.issue(
                f"key {_quote(key)} in {where} starts with '$', which IoT Hub reserves for "
                "its own fields",
                "reserved-key",
            )
            rest = key[1:]
        bad = _FORBIDDEN_RE.findall(rest)
        if bad:
            self.issue(
                f"key {_quote(key)} in {where} contains {_describe_chars(bad)}, which IoT Hub "
                "does not allow in property names",
                "forbidden-char",
            )
        self.length(f"key {_quote(key)} in {where}", key, limits.KEY_MAX_BYTES, "key-too-long")

    def value(self, value: Any, level: int, nesting: int, in_array: bool, member: bool) -> None:
        # `level` is the object level of the object holding `value` (or holding its array).
        if isinstance(value, str):
            if len(value) * 4 > limits.STRING_MAX_BYTES:  # else it cannot be too long
                self.length(
                    f"{self.where()} (a string)", value, limits.STRING_MAX_BYTES, "string-too-long"
                )
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not limits.INT_MIN <= value <= limits.INT_MAX:
                self.issue(
                    f"{self.where()} is {value}, outside IoT Hub's integer range "
                    f"{limits.INT_MIN}..{limits.INT_MAX}",
                    "int-range",
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                self.issue(
                    f"{self.where()} is {value}, which JSON cannot represent", "invalid-json-type"
                )
        elif isinstance(value, dict):
            if level + 1 > limits.MAX_DEPTH:
                self.issue(
                    f"{self.where()} is an object {level + 1} levels below the section root; "
                    f"IoT Hub allows at most {limits.MAX_DEPTH}",
                    "too-deep",
                )
            elif self.nesting_ok(nesting + 1):
                self.object(value, level + 1, nesting + 1, in_array)
        elif isinstance(value, list):
            if self.nesting_ok(nesting + 1):
                for index, item in enumerate(value):
                    self.path.append(_Index(index))
                    self.value(item, level, nesting + 1, in_array=True, member=False)
                    self.path.pop()
        elif value is None:
            if member and not in_array and not self.patch:
                self.issue(
                    f"{self.where()} is null; a twin cannot store null (in a patch, null "
                    "deletes the key)",
                    "invalid-json-type",
                )
        else:
            self.issue(
                f"{self.where()} holds a {type(value).__name__}, which is not a JSON value",
                "invalid-json-type",
            )

    def length(self, subject: str, text: str, limit: int, code: str) -> None:
        size = _utf8_len(text)
        if size > limit:
            self.issue(f"{subject} is {size} bytes in UTF-8; IoT Hub allows at most {limit}", code)

    def nesting_ok(self, nesting: int) -> bool:
        if nesting <= MAX_NESTING:
            return True
        self.issue(
            f"{self.where()} is nested {nesting} objects and arrays deep; at most "
            f"{MAX_NESTING} are accepted",
            "too-deep",
        )
        return False


def _key_looks_fine(key: str) -> bool:
    """Cheap pre-check: short keys without forbidden characters need no closer look."""
    return 0 < len(key) * 4 <= limits.KEY_MAX_BYTES and _FORBIDDEN_RE.search(key) is None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _shown(text: str, limit: int = 60) -> str:
    """A key as messages show it: control characters escaped, long keys shortened."""
    shown = _CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def _quote(text: str) -> str:
    return f"'{_shown(text)}'"


def _describe_chars(chars: list[str]) -> str:
    names: list[str] = []
    for ch in dict.fromkeys(chars):
        if ch == " ":
            names.append("' ' (space)")
        elif _CONTROL_RE.match(ch):
            names.append(f"control character U+{ord(ch):04X}")
        else:
            names.append(f"'{ch}'")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
