"""The editor's text: which part of a twin is editable, and what is wrong with it, where.

The editable document is exactly what a service PATCH may change (reference C.3):
``{"tags": {...}, "properties": {"desired": {...}}}`` without ``$metadata``/``$version``.
Everything else (identity fields, etag, versions, reported, metadata) is read-only and
shown apart, so the text a user edits is the text that gets sent.

``validate_text`` checks JSON syntax, the editable shape and IoT Hub's rules
(``twin.validate_section``), and gives every issue a line and column in the text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from json.decoder import scanstring
from typing import Any

from twin_explorer.twin import check_size, limits, path_in_twin, section_size, validate_section
from twin_explorer.twin.values import copy_json

ROOT_KEYS = ("tags", "properties")
# Where each twin section sits in the editable document.
SECTION_PATHS: dict[str, tuple[str, ...]] = {
    "tags": ("tags",),
    "desired": ("properties", "desired"),
}


class Severity(StrEnum):
    ERROR = "error"  # save is disabled until it is fixed
    WARNING = "warning"  # worth knowing; save still works


@dataclass(frozen=True)
class EditIssue:
    """One problem in the editor's text, at a place: 1-based line and column (code points)."""

    message: str
    line: int
    column: int
    offset: int  # 0-based character offset of (line, column)
    length: int  # characters to underline from ``offset``
    path: tuple[str, ...] = ()  # key path in the editable document, when there is one
    code: str = "json-syntax"
    severity: Severity = Severity.ERROR

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True)
class Validation:
    """The outcome of checking one text. ``document`` is None unless the text is usable."""

    text: str
    document: dict[str, Any] | None
    issues: tuple[EditIssue, ...] = ()
    sizes: dict[str, int] = field(default_factory=dict)  # section -> bytes as the hub counts

    @property
    def errors(self) -> tuple[EditIssue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    @property
    def ok(self) -> bool:
        return self.document is not None and not self.errors


# -- the two halves of a twin ----------------------------------------------------------------


def editable_part(twin: dict[str, Any]) -> dict[str, Any]:
    """Tags and desired properties of a service-view twin, without bookkeeping keys."""
    desired = (twin.get("properties") or {}).get("desired") or {}
    return {
        "tags": copy_json(twin.get("tags") or {}),
        "properties": {
            "desired": {
                k: copy_json(v) for k, v in desired.items() if k not in limits.BOOKKEEPING_KEYS
            }
        },
    }


def readonly_part(twin: dict[str, Any], *, metadata: bool = True) -> dict[str, Any]:
    """Everything of a twin the editor cannot change: identity fields, etag, versions,
    desired ``$version``/``$metadata`` and the whole reported section. For showing: it
    shares values with ``twin``. ``metadata=False`` leaves the ``$metadata`` trees out."""
    root = {k: v for k, v in twin.items() if k not in ROOT_KEYS}
    properties = twin.get("properties") or {}
    desired = properties.get("desired") or {}
    reported = properties.get("reported") or {}
    kept = ("$version", "$metadata") if metadata else ("$version",)
    root["properties"] = {
        "desired": {k: desired[k] for k in kept if k in desired},
        "reported": reported
        if metadata
        else {k: v for k, v in reported.items() if k != "$metadata"},
    }
    return root


MISSING: Any = object()  # what ``value_at`` gives where a path leads nowhere


def value_at(doc: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (keys from the root), or ``MISSING``."""
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return MISSING
        doc = doc[key]
    return doc


def pretty(doc: Any) -> str:
    """The editor's layout: two-space indent, keys in the hub's order, Unicode as is."""
    return json.dumps(doc, indent=2, ensure_ascii=False)


def canonical(doc: Any) -> str:
    """Layout for comparing: like ``pretty`` but with sorted keys, so order never shows as a
    change."""
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True)


def section_of(doc: dict[str, Any], section: str) -> Any:
    node: Any = doc
    for key in SECTION_PATHS[section]:
        node = node.get(key) if isinstance(node, dict) else None
    return node


# -- validation --------------------------------------------------------------------------------


def validate_text(text: str) -> Validation:
    """Check the editor's text: JSON syntax, the editable shape, then IoT Hub's rules."""
    duplicates: list[tuple[dict, list[str]]] = []
    try:
        doc = json.loads(text, object_pairs_hook=_pairs_hook(duplicates))
    except json.JSONDecodeError as exc:
        return Validation(text, None, (_syntax_issue(text, exc),))
    except RecursionError:
        return Validation(text, None, (_issue_at(text, 0, "The JSON is nested too deeply."),))

    found: list[tuple[tuple[str, ...], str, str, Severity]] = []
    _check_shape(doc, found)
    if isinstance(doc, dict):
        for container, keys in duplicates:
            path = _path_of(doc, container)
            if path is None:
                continue
            for key in keys:
                where = ".".join(path) or "the document"
                found.append(
                    (
                        (*path, key),
                        f"Duplicate key '{key}' in {where}: only this last one counts.",
                        "duplicate-key",
                        Severity.WARNING,
                    )
                )
    shape_ok = not any(severity is Severity.ERROR for *_, severity in found)
    sizes: dict[str, int] = {}
    if shape_ok:
        for section in SECTION_PATHS:
            found.extend(_twin_rules(section, section_of(doc, section), sizes))

    index = KeyIndex(text) if found else None
    issues = [
        _place(text, index, path, message, code, severity)
        for path, message, code, severity in found
    ]
    issues.sort(key=lambda i: (i.offset, i.severity is not Severity.ERROR))
    usable = doc if shape_ok else None
    return Validation(text, usable, tuple(issues), sizes)


def _twin_rules(section: str, body: dict, sizes: dict[str, int]) -> list:
    """IoT Hub's rules for one section, sizing it once (``validate_section`` in full would
    size it again, and the status line needs the size anyway)."""
    error = Severity.ERROR
    found = [
        (path_in_twin(issue.path), issue.message + ".", issue.code, error)
        for issue in validate_section(section, body, patch=True)  # type: ignore[arg-type]
    ]
    for path in _null_members(body):
        where = ".".join((section, *path))
        found.append(
            (
                path_in_twin((section, *path)),
                f"{where} is null, and a twin cannot store null. To delete the key, remove it "
                "from the text: Save sends the null for you.",
                "invalid-json-type",
                error,
            )
        )
    sizes[section] = section_size(body)
    too_deep = any(code == "too-deep" for _, _, code, _ in found)
    if sizes[section] > limits.SECTION_MAX_BYTES[section] and not too_deep:
        issue = check_size(section, body)  # type: ignore[arg-type]
        if issue is not None:
            found.append((path_in_twin(issue.path), issue.message + ".", issue.code, error))
    return found


def _null_members(doc: dict) -> list[tuple[str, ...]]:
    """Paths of object members that are null, outside arrays (arrays travel whole, and
    null is an ordinary value in them)."""
    found: list[tuple[str, ...]] = []
    stack: list[tuple[dict, tuple[str, ...]]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        for key, value in node.items():
            if value is None:
                found.append((*path, key))
            elif isinstance(value, dict):
                stack.append((value, (*path, key)))
    return found


def _pairs_hook(duplicates: list[tuple[dict, list[str]]]):
    def hook(pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            duplicates.append((obj, [key for key, n in counts.items() if n > 1]))
        return obj

    return hook


def _path_of(root: Any, target: dict) -> tuple[str, ...] | None:
    """The key path of the object ``target`` (by identity) inside ``root``."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(
                (v, (*path, str(i))) for i, v in enumerate(node) if isinstance(v, dict | list)
            )
    return None


_READ_ONLY_ROOT = {
    "deviceId", "moduleId", "etag", "deviceEtag", "version", "status", "statusReason",
    "statusUpdateTime", "connectionState", "lastActivityTime", "cloudToDeviceMessageCount",
    "authenticationType", "x509Thumbprint", "modelId", "capabilities", "parentScopes",
    "deviceScope",
}  # fmt: skip


def _check_shape(doc: Any, found: list) -> None:
    """The editable document must be ``{"tags": {...}, "properties": {"desired": {...}}}``."""
    error = Severity.ERROR
    if not isinstance(doc, dict):
        found.append(((), 'The twin must be a JSON object: {"tags": {…}, '
                      '"properties": {"desired": {…}}}.', "structure", error))  # fmt: skip
        return
    for key in doc:
        if key in ROOT_KEYS:
            continue
        if key in _READ_ONLY_ROOT:
            why = f"'{key}' is read-only (it is shown in the read-only view); remove it here."
        else:
            why = f"'{key}' cannot be edited here: only tags and properties.desired are sent."
        found.append(((key,), why, "read-only", error))
    if "tags" not in doc:
        found.append(((), 'tags is missing: keep "tags": {} (empty it to remove every tag).',
                      "structure", error))  # fmt: skip
    elif not isinstance(doc["tags"], dict):
        found.append((("tags",), "tags must be a JSON object.", "structure", error))
    properties = doc.get("properties")
    if not isinstance(properties, dict):
        found.append(
            (("properties",) if "properties" in doc else (),
             'properties must be an object holding "desired": {…}.', "structure", error)
        )  # fmt: skip
        return
    for key in properties:
        if key == "reported":
            why = "Reported properties are written by the device and are read-only here."
        elif key != "desired":
            why = f"'{key}' cannot be edited here: properties holds only desired."
        else:
            continue
        found.append((("properties", key), why, "read-only", error))
    desired = properties.get("desired")
    if not isinstance(desired, dict):
        found.append(
            (("properties", "desired") if "desired" in properties else ("properties",),
             'desired is missing or not an object: keep "desired": {}.', "structure", error)
        )  # fmt: skip
        return
    for key in limits.BOOKKEEPING_KEYS & desired.keys():
        found.append((("properties", "desired", key),
                      f"'{key}' is kept by the hub and read-only; remove it here.",
                      "read-only", error))  # fmt: skip


def _place(
    text: str,
    index: KeyIndex | None,
    path: tuple[str, ...],
    message: str,
    code: str,
    severity: Severity,
) -> EditIssue:
    """Give an issue found at ``path`` its place in ``text`` (the nearest ancestor's if the
    path itself is not in the text)."""
    spot = None
    probe = path
    if index is not None:
        while spot is None:
            spot = index.get(probe)
            if not probe:
                break
            probe = probe[:-1]
    offset, length = spot or (0, 1)
    line, column = line_column(text, offset)
    return EditIssue(message, line, column, offset, max(length, 1), path, code, severity)


def line_column(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _issue_at(text: str, offset: int, message: str) -> EditIssue:
    offset = max(0, min(offset, len(text)))
    line, column = line_column(text, offset)
    word = _WORD.match(text, offset)
    length = word.end() - offset if word and word.end() > offset else 1
    return EditIssue(message, line, column, offset, length)


_WORD = re.compile(r"[A-Za-z0-9_+\-.]+")
_SYNTAX_HINTS = {
    "Expecting value": "a value is missing here (a string, number, object, array, true, false)",
    "Extra data": "there is text after the end of the JSON document",
    "Unterminated string starting at": 'this string has no closing "',
    "Expecting ',' delimiter": "a comma is missing before this",
    "Expecting ':' delimiter": "a colon is missing after the key",
}


def _syntax_issue(text: str, exc: json.JSONDecodeError) -> EditIssue:
    before = text[: exc.pos].rstrip()
    if before.endswith(",") and exc.msg.startswith(("Expecting property name", "Expecting value")):
        reason = "a trailing comma: JSON allows no comma before a closing } or ]"
        offset = len(before) - 1
    else:
        reason = _SYNTAX_HINTS.get(exc.msg, exc.msg[:1].lower() + exc.msg[1:])
        if exc.msg.startswith("Expecting property name"):
            reason = 'keys must be strings in double quotes, like "name"'
        elif exc.msg.startswith("Invalid control character"):
            reason = "a line break or control character inside a string (write it as \\n)"
        offset = exc.pos
    return _issue_at(text, offset, f"JSON syntax error: {reason}.")


# -- where keys are in the text ---------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# key or element -> (offset of the key or element, its length in characters, value offset)
Members = dict[str, tuple[int, int, int]]


class KeyIndex:
    """Where keys (and array elements) of a valid JSON text are, by key path.

    ``twin.locate`` walks the text in Python for every path: about a tenth of a second per
    path on a twin at the size limits, too slow for a list of issues refreshed as the user
    types. Here each object on the way to a path is read once and remembered, and values
    in between are skipped by the C JSON scanner. Duplicate keys: the last one counts, as
    ``json.loads`` does.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._containers: dict[int, Members | None] = {}

    def get(self, path: tuple[str, ...]) -> tuple[int, int] | None:
        """(offset, length) of the key at ``path`` (of the element, inside arrays)."""
        pos = _WS.match(self.text, 0).end()  # type: ignore[union-attr]
        if pos >= len(self.text):
            return None
        spot = (pos, 1)
        for step in path:
            members = self._members(pos)
            if members is None or step not in members:
                return None
            offset, length, pos = members[step]
            spot = (offset, length)
        return spot

    def _members(self, pos: int) -> Members | None:
        if pos not in self._containers:
            try:
                self._containers[pos] = self._read(pos)
            except (ValueError, IndexError):  # not JSON after all: no places to give
                self._containers[pos] = None
        return self._containers[pos]

    def _read(self, pos: int) -> Members | None:
        text = self.text
        opener = text[pos]
        if opener not in "{[":
            return None
        closer = "}" if opener == "{" else "]"
        members: Members = {}
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        index = 0
        while text[pos] != closer:
            if opener == "{":
                start = pos
                key, end = scanstring(text, pos + 1)
                length = end - start
                pos = _WS.match(text, end).end()  # type: ignore[union-attr]
                if text[pos] != ":":
                    raise ValueError("expected ':'")
                value = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                _, end = _DECODER.raw_decode(text, value)
                members[key] = (start, length, value)
            else:
                value = pos
                _, end = _DECODER.raw_decode(text, value)
                length = 1 if text[value] in "{[" else end - value
                members[str(index)] = (value, length, value)
                index += 1
            pos = _WS.match(text, end).end()  # type: ignore[union-attr]
            if text[pos] == ",":
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        return members
