"""The change a bulk run makes: one merge patch of tags and/or desired properties.

Written once, as a merge patch in the editor's shape (``{"tags": {…}, "properties":
{"desired": {…}}}``, ``null`` deletes) or as "set these keys / remove these keys" (dotted
paths such as ``tags.building`` or ``desired.telemetryInterval``). The editor's rules
apply: IoT Hub's key, value and depth rules through ``validate_section`` (sizes are
checked per twin, on the merged result, by the preview).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from twin_explorer.service.edit_text import line_column
from twin_explorer.twin import validate_section
from twin_explorer.twin.values import copy_json

SECTION_ROOTS = {"tags": ("tags",), "desired": ("properties", "desired")}


class ChangeError(ValueError):
    """The change cannot be used; ``str()`` says why and where, in plain words."""


@dataclass(frozen=True)
class BulkChange:
    """A merge patch over the editable part of a twin (tags and desired only)."""

    patch: dict[str, Any]

    @property
    def tags(self) -> dict[str, Any] | None:
        return self.patch.get("tags")

    @property
    def desired(self) -> dict[str, Any] | None:
        return (self.patch.get("properties") or {}).get("desired")

    def to_json(self) -> dict[str, Any]:
        return copy_json(self.patch)

    @property
    def text(self) -> str:
        return json.dumps(self.patch, indent=2, ensure_ascii=False)


def parse_change(text: str) -> BulkChange:
    """A change from merge patch text; ChangeError with line and column when it is wrong."""
    if not text.strip():
        raise ChangeError("The patch is empty: write a merge patch of tags and/or desired.")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        line, column = line_column(text, exc.pos)
        raise ChangeError(f"Line {line}, column {column}: {exc.msg}.") from None
    except RecursionError:
        raise ChangeError("The JSON is nested too deeply.") from None
    return make_change(doc)


def make_change(doc: Any) -> BulkChange:
    """A change from a parsed merge patch; ChangeError if it breaks a rule."""
    if not isinstance(doc, dict):
        raise ChangeError('The patch must be a JSON object like {"tags": {…}}.')
    unknown = sorted(set(doc) - {"tags", "properties"})
    if unknown:
        raise ChangeError(
            f"The patch may hold only 'tags' and 'properties.desired', not {unknown[0]!r}."
        )
    properties = doc.get("properties")
    if properties is not None and (
        not isinstance(properties, dict) or set(properties) - {"desired"}
    ):
        raise ChangeError(
            "'properties' may hold only 'desired': reported properties belong to the device."
        )
    patch: dict[str, Any] = {}
    for section, path in SECTION_ROOTS.items():
        body = _at(doc, path)
        if body is None:
            continue
        issues = validate_section(section, body, patch=True)  # type: ignore[arg-type]
        if issues:
            first = issues[0]
            raise ChangeError(f"{'.'.join(first.path)}: {first.message}.")
        if body:
            _put(patch, path, copy_json(body))
    if not patch:
        raise ChangeError("The patch changes nothing: give tags or desired properties.")
    return BulkChange(patch)


def change_from_keys(
    set_keys: Mapping[str, Any] | None = None, remove_keys: Iterable[str] = ()
) -> BulkChange:
    """A change that sets ``set_keys`` (dotted path -> value) and removes ``remove_keys``."""
    doc: dict[str, Any] = {}
    for dotted, value in (set_keys or {}).items():
        if value is None:
            raise ChangeError(f"{dotted}: a twin cannot store null; remove the key instead.")
        _put(doc, _twin_path(dotted), copy_json(value))
    for dotted in remove_keys:
        _put(doc, _twin_path(dotted), None)
    return make_change(doc)


def _twin_path(dotted: str) -> tuple[str, ...]:
    parts = tuple(dotted.strip().split("."))
    if parts[:2] == ("properties", "desired"):
        root, rest = SECTION_ROOTS["desired"], parts[2:]
    elif parts[0] in SECTION_ROOTS:
        root, rest = SECTION_ROOTS[parts[0]], parts[1:]
    else:
        raise ChangeError(
            f"{dotted!r}: a key path starts with 'tags.' or 'desired.' (e.g. tags.building)."
        )
    if not rest or not all(rest):
        raise ChangeError(f"{dotted!r}: name a key below {parts[0]}, like {parts[0]}.name.")
    return (*root, *rest)


def _at(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
