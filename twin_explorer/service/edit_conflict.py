"""When someone else changed the twin first (412): what they changed, what you changed,
where the two overlap, and the merge of both.

All three documents are editable parts (``{"tags", "properties": {"desired"}}``):
``base`` is what the edit started from, ``theirs`` what the hub holds now, ``mine`` the
editor's text. Each side's change is the minimal merge patch from ``base``. Two changes
overlap where a path one side changed is the same as, or inside, a path the other side
changed, and the two documents now disagree there. Everything else merges by applying
my patch on top of theirs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from twin_explorer.service.edit_text import MISSING, editable_part, pretty, value_at
from twin_explorer.twin import make_patch, merge_patch
from twin_explorer.twin.values import copy_json, json_equal


class Choice(StrEnum):
    MINE = "mine"
    THEIRS = "theirs"


class Operation(StrEnum):
    PATCH = "patch"  # Save: a merge patch
    REPLACE = "replace"  # Replace: tags and desired wholesale


@dataclass(frozen=True)
class Overlap:
    """A place both sides changed differently; the user picks whose value to keep."""

    path: tuple[str, ...]  # in the editable document
    mine: Any  # my value there (None with ``in_mine`` False: I removed it)
    theirs: Any
    in_mine: bool
    in_theirs: bool

    @property
    def label(self) -> str:
        return display_path(self.path)

    def shown(self, choice: Choice) -> str:
        """The value as the conflict view shows it."""
        present, value = (
            (self.in_mine, self.mine) if choice is Choice.MINE else (self.in_theirs, self.theirs)
        )
        return pretty(value) if present else "(removed)"


@dataclass(frozen=True)
class Conflict:
    operation: Operation
    base: dict[str, Any]  # the service-view twin the edit started from
    theirs: dict[str, Any]  # the service-view twin on the hub now
    my_text: str  # the editor's text, exactly as typed
    mine: dict[str, Any]  # that text, parsed
    my_patch: dict[str, Any] = field(default_factory=dict)
    their_patch: dict[str, Any] = field(default_factory=dict)
    overlaps: tuple[Overlap, ...] = ()

    @property
    def their_etag(self) -> str:
        return self.theirs.get("etag") or ""

    @property
    def my_etag(self) -> str:
        return self.base.get("etag") or ""

    def merged(self, choices: Mapping[tuple[str, ...], Choice] | None = None) -> dict[str, Any]:
        """Their document with my change on top; ``choices`` settles every overlap.

        Raises ValueError naming the overlaps left without a choice.
        """
        choices = choices or {}
        missing = [o.label for o in self.overlaps if o.path not in choices]
        if missing:
            raise ValueError("Choose yours or theirs for: " + ", ".join(missing))
        groups = [o.path for o in self.overlaps]
        kept = [
            (path, value)
            for path, value in leaves(self.my_patch)
            if not any(_is_prefix(group, path) for group in groups)
        ]
        result = merge_patch(editable_part(self.theirs), nest(kept))
        for overlap in self.overlaps:
            if Choice(choices[overlap.path]) is Choice.MINE:
                _set(result, overlap.path, overlap.mine if overlap.in_mine else MISSING)
        return result


def find_conflict(
    operation: Operation,
    base: dict[str, Any],
    theirs: dict[str, Any],
    mine: dict[str, Any],
    my_text: str,
) -> Conflict:
    base_part = editable_part(base)
    their_part = editable_part(theirs)
    my_patch = make_patch(base_part, mine)
    their_patch = make_patch(base_part, their_part)
    overlaps = tuple(_overlaps(my_patch, their_patch, mine, their_part))
    return Conflict(operation, base, theirs, my_text, mine, my_patch, their_patch, overlaps)


def _overlaps(my_patch: dict, their_patch: dict, mine: dict, theirs: dict) -> Iterator[Overlap]:
    their_leaves = [path for path, _ in leaves(their_patch)]
    groups: set[tuple[str, ...]] = set()
    for path, _ in leaves(my_patch):
        for other in their_leaves:
            if _is_prefix(path, other) or _is_prefix(other, path):
                groups.add(min(path, other, key=len))
    # Keep the outermost of nested groups: one choice settles everything inside it.
    outer = [g for g in groups if not any(o != g and _is_prefix(o, g) for o in groups)]
    for path in sorted(outer):
        my_value, their_value = value_at(mine, path), value_at(theirs, path)
        if my_value is MISSING and their_value is MISSING:
            continue
        both = my_value is not MISSING and their_value is not MISSING
        if both and json_equal(my_value, their_value):
            continue  # both made the same change
        yield Overlap(
            path,
            None if my_value is MISSING else copy_json(my_value),
            None if their_value is MISSING else copy_json(their_value),
            my_value is not MISSING,
            their_value is not MISSING,
        )


def leaves(patch: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """The (path, value) pairs a merge patch sets; a null value deletes, {} stays a leaf."""
    for key, value in patch.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key), value


def nest(pairs: list[tuple[tuple[str, ...], Any]]) -> dict:
    """The merge patch made of these (path, value) pairs (the inverse of ``leaves``)."""
    patch: dict = {}
    for path, value in pairs:
        node = patch
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = copy_json(value)
    return patch


def display_path(path: tuple[str, ...]) -> str:
    """``desired.a.b`` or ``tags.x`` rather than ``properties.desired.a.b``."""
    if path[:1] == ("properties",):
        path = path[1:]
    return ".".join(path)


def _is_prefix(prefix: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return path[: len(prefix)] == prefix


def _set(doc: dict, path: tuple[str, ...], value: Any) -> None:
    """Put ``value`` at ``path`` (creating objects on the way); ``MISSING`` removes it."""
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if value is MISSING:
                return
            child = node[key] = {}
        node = child
    if value is MISSING:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy_json(value)
