"""Twin history, without Qt: every version of a watched twin seen this session.

The twin watcher records the whole twin each time a poll sees its etag change, and at
once each twin this app itself produced (a save's answer). A simulated module's report is
answered only with the reported ``$version``: its twin is inferred from the one before it
and kept as *provisional* until a poll sees it whole and ``confirm`` puts it in place. Versions
are kept per identity (``device`` or ``device/module``), newest last, bounded per twin.
Any two can be compared as canonical pretty JSON (sorted keys, two-space indent), as a
unified diff or as side-by-side rows for a coloured view.

The watcher also links the patch events it publishes (or recognises as this app's own)
to the two versions they sit between, so the patch log can show the twin diff a patch
made. Unlinked events fall back to the newest version seen before them.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from twin_explorer.twin.clock import utc_now
from twin_explorer.twin.events import PatchEvent, Section
from twin_explorer.twin.identity import identity_path
from twin_explorer.twin.merge import merge_patch
from twin_explorer.twin.values import copy_json

DEFAULT_VERSIONS_PER_TWIN = 200
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # all twins together, as compact JSON
_LINKS_KEPT = 20_000


@dataclass(frozen=True)
class TwinVersion:
    """One observed state of a twin."""

    identity: str
    seq: int  # 1, 2, ... per identity in this session
    time: str
    etag: str
    twin: dict[str, Any] = field(repr=False, compare=False)
    size: int = field(default=0, compare=False)  # compact JSON length: what keeping it costs
    order: int = field(default=0, compare=False)  # across all twins, for dropping the oldest
    provisional: bool = field(default=False, compare=False)  # inferred, not yet seen whole

    @property
    def version(self) -> int | None:
        """The twin's root ``version`` (moves on any change)."""
        value = self.twin.get("version")
        return value if isinstance(value, int) else None

    def section_version(self, section: Section) -> int | None:
        if section not in (Section.DESIRED, Section.REPORTED):
            return None
        value = _section(self.twin, section.value).get("$version")
        return value if isinstance(value, int) else None

    @property
    def label(self) -> str:
        desired = self.section_version(Section.DESIRED)
        reported = self.section_version(Section.REPORTED)
        clock = self.time[11:19] if len(self.time) >= 19 else self.time
        return (
            f"#{self.seq} · {clock} · version {self.version} · "
            f"desired ${desired} · reported ${reported}"
        )


@dataclass(frozen=True)
class TwinChange:
    """The twin before and after one patch; ``after`` may be inferred from the patch."""

    before: dict[str, Any] | None
    after: dict[str, Any]
    inferred: bool = False  # True when ``after`` is "before + this patch", not observed


class TwinHistory:
    def __init__(
        self,
        versions_per_twin: int = DEFAULT_VERSIONS_PER_TWIN,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.versions_per_twin = versions_per_twin
        self.max_bytes = max_bytes
        self.bytes = 0
        self._order = itertools.count()
        self._versions: dict[str, list[TwinVersion]] = {}
        self._counters: dict[str, Iterator[int]] = {}
        self._links: OrderedDict[int, tuple[str, int | None, int]] = OrderedDict()
        self._listeners: list[Callable[[TwinVersion], None]] = []

    # -- recording ---------------------------------------------------------------------

    def record(
        self, twin: dict[str, Any], time: str | None = None, *, provisional: bool = False
    ) -> TwinVersion | None:
        """Keep ``twin`` as the newest version of its identity; None if its etag is the
        newest one already (nothing changed)."""
        identity = identity_path(twin["deviceId"], twin.get("moduleId"))
        versions = self._versions.setdefault(identity, [])
        etag = str(twin.get("etag") or "")
        if versions and versions[-1].etag == etag and not provisional:
            return None
        counter = self._counters.setdefault(identity, itertools.count(1))
        size = len(json.dumps(twin, separators=(",", ":"), ensure_ascii=False))
        version = TwinVersion(
            identity,
            next(counter),
            time or utc_now(),
            etag,
            copy_json(twin),
            size,
            next(self._order),
            provisional,
        )
        versions.append(version)
        self.bytes += size
        while len(versions) > self.versions_per_twin:
            self.bytes -= versions.pop(0).size
        self._trim()
        for listener in list(self._listeners):
            listener(version)
        return version

    def confirm(self, twin: dict[str, Any]) -> TwinVersion | None:
        """Put ``twin`` (seen whole) in place of its identity's newest version when that one
        is provisional; it keeps its number. None when there is nothing to confirm."""
        identity = identity_path(twin["deviceId"], twin.get("moduleId"))
        versions = self._versions.get(identity)
        if not versions or not versions[-1].provisional:
            return None
        old = versions[-1]
        size = len(json.dumps(twin, separators=(",", ":"), ensure_ascii=False))
        version = replace(
            old,
            etag=str(twin.get("etag") or ""),
            twin=copy_json(twin),
            size=size,
            provisional=False,
        )
        versions[-1] = version
        self.bytes += size - old.size
        for listener in list(self._listeners):
            listener(version)
        return version

    def _trim(self) -> None:
        """Over the byte budget: drop the oldest versions of any twin, never a latest one."""
        while self.bytes > self.max_bytes:
            droppable = [v for v in self._versions.values() if len(v) > 1]
            if not droppable:
                return
            oldest = min(droppable, key=lambda versions: versions[0].order)
            self.bytes -= oldest.pop(0).size

    def subscribe(self, listener: Callable[[TwinVersion], None]) -> Callable[[], None]:
        """Be told of each new version (the history dialog refreshes its pickers)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def link(self, event_id: int, before: TwinVersion | None, after: TwinVersion) -> None:
        """Remember that event ``event_id`` took the twin from ``before`` to ``after``."""
        self._links[event_id] = (after.identity, before.seq if before else None, after.seq)
        while len(self._links) > _LINKS_KEPT:
            self._links.popitem(last=False)

    def clear(self) -> None:
        self.bytes = 0
        self._versions.clear()
        self._counters.clear()
        self._links.clear()

    # -- reading -----------------------------------------------------------------------

    def identities(self) -> list[str]:
        return sorted(key for key, versions in self._versions.items() if versions)

    def versions(self, identity: str) -> list[TwinVersion]:
        return list(self._versions.get(identity, ()))

    def latest(self, identity: str) -> TwinVersion | None:
        versions = self._versions.get(identity)
        return versions[-1] if versions else None

    def find(self, identity: str, seq: int | None) -> TwinVersion | None:
        if seq is None:
            return None
        return next((v for v in self._versions.get(identity, ()) if v.seq == seq), None)

    def change_for(self, event: PatchEvent) -> TwinChange | None:
        """The twin diff ``event`` made, from a link, or else the newest version seen at or
        before the event with the patch applied to it. None when the twin was never seen,
        or when the event changes no twin (a method call)."""
        if not event.changes_twin:
            return None
        linked = self._links.get(event.id)
        if linked is not None:
            identity, before_seq, after_seq = linked
            after = self.find(identity, after_seq)
            if after is not None:
                before = self.find(identity, before_seq)
                return TwinChange(before.twin if before else None, after.twin)
        base = None
        for version in self._versions.get(event.identity, ()):
            if version.time <= event.time:
                base = version
        if base is None:
            return None
        return TwinChange(base.twin, apply_event(base.twin, event), inferred=True)


# -- twin text and diffs ---------------------------------------------------------------


def _section(twin: dict[str, Any], name: str) -> dict[str, Any]:
    properties = twin.get("properties")
    value = properties.get(name) if isinstance(properties, dict) else None
    return value if isinstance(value, dict) else {}


def apply_event(twin: dict[str, Any], event: PatchEvent) -> dict[str, Any]:
    """``twin`` with the event's patch merged into the section it names."""
    result = copy_json(twin)
    properties = result.setdefault("properties", {})
    if event.section is Section.TAGS:
        result["tags"] = merge_patch(result.get("tags") or {}, event.body)
    elif event.section in (Section.DESIRED, Section.REPORTED):
        name = event.section.value
        properties[name] = merge_patch(properties.get(name) or {}, event.body)
    else:  # a whole-twin patch: {"tags": ..., "properties": {"desired": ...}}
        body = event.body
        if isinstance(body.get("tags"), dict):
            result["tags"] = merge_patch(result.get("tags") or {}, body["tags"])
        for name, patch in (body.get("properties") or {}).items():
            if isinstance(patch, dict):
                properties[name] = merge_patch(properties.get(name) or {}, patch)
    return result


def without_metadata(value: Any) -> Any:
    """A copy without ``$metadata`` members (they change with every write and drown diffs)."""
    if isinstance(value, dict):
        return {k: without_metadata(v) for k, v in value.items() if k != "$metadata"}
    if isinstance(value, list):
        return [without_metadata(v) for v in value]
    return value


def canonical(twin: dict[str, Any] | None, *, metadata: bool = False) -> str:
    """Canonical pretty JSON: sorted keys, two-space indent, one trailing newline."""
    if twin is None:
        return ""
    doc = twin if metadata else without_metadata(twin)
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def unified_diff(
    before: str, after: str, before_name: str = "before", after_name: str = "after", context=3
) -> list[str]:
    """Unified diff lines (no trailing newlines); empty when the texts are equal."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            before_name,
            after_name,
            n=context,
        )
    ]


RowKind = Literal["same", "changed", "removed", "added"]


@dataclass(frozen=True)
class SideBySideRow:
    kind: RowKind
    left: str | None  # None: no line on this side
    right: str | None
    left_number: int | None = None
    right_number: int | None = None


def side_by_side(before: str, after: str) -> list[SideBySideRow]:
    """Aligned rows of both texts: equal lines beside each other, changes paired up."""
    left = before.splitlines()
    right = after.splitlines()
    rows: list[SideBySideRow] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(
                SideBySideRow("same", left[i], right[j], i + 1, j + 1)
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        for offset in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + offset, j1 + offset
            has_left, has_right = i < i2, j < j2
            kind: RowKind = (
                "changed" if has_left and has_right else "removed" if has_left else "added"
            )
            rows.append(
                SideBySideRow(
                    kind,
                    left[i] if has_left else None,
                    right[j] if has_right else None,
                    i + 1 if has_left else None,
                    j + 1 if has_right else None,
                )
            )
    return rows
