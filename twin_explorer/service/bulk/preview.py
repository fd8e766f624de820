"""What a change does to one twin, decided before anything is sent.

``preview_twin`` merges the change into the twin's editable part (tags and desired) and
keeps the editor's minimal patch from the twin to that result. The twin is then

* ``change``: the patch is not empty and the result is within IoT Hub's limits;
* ``skipped``: the twin already is so (the patch is empty);
* ``blocked``: the result would break a limit (the reason says which, in plain words).

Each item also keeps, for every place the patch touches, the value the preview read
there (``Touch``). That is what lets a write that met a newer etag be re-diffed without
the old twin (``recheck``), a run be reverted twin by twin (``revert_item``), and the
preview show the editor's diff of exactly what changes (``diff``) for any number of
twins without keeping whole twins in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from twin_explorer.service.edit_diff import DiffRow, diff_documents
from twin_explorer.service.edit_text import MISSING, editable_part, value_at
from twin_explorer.twin import check_size, make_patch, merge_patch
from twin_explorer.twin.identity import identity_path
from twin_explorer.twin.merge import strip_nulls
from twin_explorer.twin.values import copy_json, json_equal


class Plan(StrEnum):
    CHANGE = "change"
    SKIPPED = "skipped"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Touch:
    """One place a patch writes: its path in the editable document, and the value there
    before (``MISSING`` when there was none) and after the patch."""

    path: tuple[str, ...]
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": list(self.path)}
        if self.before is not MISSING:
            out["before"] = self.before
        if self.after is not MISSING:
            out["after"] = self.after
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Touch:
        return cls(tuple(doc["path"]), doc.get("before", MISSING), doc.get("after", MISSING))


class PreviewItem:
    """One twin's preview. A run may hold 100,000 of these, so each keeps its patch and
    touches as compact JSON text (read back on use) and its one-line summary: strings
    are not tracked by Python's cycle collector, whose full passes over millions of
    small dicts would otherwise stall the window for a few hundred milliseconds."""

    __slots__ = (
        "_patch",
        "_touches",
        "device_id",
        "etag",
        "module_id",
        "plan",
        "reason",
        "summary_text",
    )  # fmt: skip

    def __init__(
        self,
        device_id: str,
        module_id: str | None,
        plan: Plan,
        etag: str = "",  # the etag the preview read: it guards the write
        patch: dict[str, Any] | None = None,  # minimal, editable shape
        touches: tuple[Touch, ...] = (),
        reason: str = "",  # why blocked, or why skipped
    ) -> None:
        self.device_id, self.module_id, self.plan = device_id, module_id, plan
        self.etag, self.reason = etag, reason
        self._patch = _COMPACT(patch or {})
        self._touches = _COMPACT([touch.to_json() for touch in touches])
        self.summary_text = _summary(plan, touches, reason)

    def __repr__(self) -> str:
        return f"PreviewItem({self.identity!r}, {self.plan.value}, {self.summary_text!r})"

    @property
    def patch(self) -> dict[str, Any]:
        return json.loads(self._patch)

    @property
    def touches(self) -> tuple[Touch, ...]:
        return tuple(Touch.from_json(t) for t in json.loads(self._touches))

    @property
    def identity(self) -> str:
        return identity_path(self.device_id, self.module_id)

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.device_id, self.module_id)

    def documents(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The places this change writes, before and after, as two small documents."""
        touches = self.touches
        return _document(touches, "before"), _document(touches, "after")

    def diff(self) -> list[DiffRow]:
        """The editor's side-by-side diff of the places this change writes."""
        return diff_documents(*self.documents())

    def summary(self) -> str:
        """One line: what changes (or why nothing does), for tables and the CLI."""
        return self.summary_text

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "moduleId": self.module_id,
            "plan": self.plan.value,
            "etag": self.etag,
            "patch": self.patch,
            "touches": [touch.to_json() for touch in self.touches],
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PreviewItem:
        return cls(
            doc["deviceId"],
            doc.get("moduleId"),
            Plan(doc["plan"]),
            doc.get("etag") or "",
            doc.get("patch") or {},
            tuple(Touch.from_json(t) for t in doc.get("touches") or ()),
            doc.get("reason") or "",
        )


ALREADY_SO = "already so"
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _summary(plan: Plan, touches: tuple[Touch, ...], reason: str) -> str:
    if plan is not Plan.CHANGE:
        return reason
    parts = []
    for touch in touches[:4]:
        where = ".".join(touch.path[1:] if touch.path[0] == "properties" else touch.path)
        if touch.after is MISSING:
            parts.append(f"remove {where}")
        else:
            parts.append(f"{where} = {_short(touch.after)}")
    more = len(touches) - 4
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def preview_twin(twin: dict[str, Any], change: dict[str, Any]) -> PreviewItem:
    """What merge patch ``change`` (editable shape) does to ``twin`` (service view)."""
    device_id, module_id = twin["deviceId"], twin.get("moduleId") or None
    etag = twin.get("etag") or ""
    editable = editable_part(twin)
    merged = merge_patch(editable, change)
    patch = make_patch(editable, merged)
    if not patch:
        return PreviewItem(device_id, module_id, Plan.SKIPPED, etag, reason=ALREADY_SO)
    touches = tuple(touched(editable, patch))
    reason = limit_broken(merged)
    if reason:
        return PreviewItem(device_id, module_id, Plan.BLOCKED, etag, {}, touches, reason)
    return PreviewItem(device_id, module_id, Plan.CHANGE, etag, patch, touches)


def limit_broken(editable: dict[str, Any]) -> str:
    """Which size limit an editable document breaks, in words ('' when none)."""
    desired = (editable.get("properties") or {}).get("desired") or {}
    for section, body in (("tags", editable.get("tags") or {}), ("desired", desired)):
        issue = check_size(section, body)  # type: ignore[arg-type]
        if issue is not None:
            return issue.message
    return ""


def touched(base: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...] = ()):
    """The places ``patch`` writes in ``base``: a patch object over a base object merges
    (walk into it), anything else is written whole at that place."""
    for key, value in patch.items():
        here = (*path, key)
        before = base.get(key, MISSING) if isinstance(base, dict) else MISSING
        if isinstance(value, dict) and isinstance(before, dict):
            yield from touched(before, value, here)
        elif value is None:
            yield Touch(here, copy_json(before), MISSING)
        else:
            after = strip_nulls(value) if isinstance(value, dict) else copy_json(value)
            yield Touch(here, copy_json(before), after)


class Recheck(StrEnum):
    CLEAN = "clean"  # every touched place still holds what the preview read (or the result)
    ALREADY = "already"  # every touched place already holds the result
    CONFLICT = "conflict"  # someone else wrote a touched place in between


def recheck(item: PreviewItem, twin: dict[str, Any]) -> tuple[Recheck, list[tuple[str, ...]]]:
    """Re-diff ``item`` against the twin as it is now; the paths another writer changed."""
    editable = editable_part(twin)
    moved: list[tuple[str, ...]] = []
    done = 0
    for touch in item.touches:
        now = value_at(editable, touch.path)
        if _same(now, touch.after):
            done += 1
        elif not _same(now, touch.before):
            moved.append(touch.path)
    if moved:
        return Recheck.CONFLICT, moved
    return (Recheck.ALREADY if done == len(item.touches) else Recheck.CLEAN), []


def revert_item(item: PreviewItem, etag: str) -> PreviewItem:
    """The item that puts back what ``item`` wrote, guarded by ``etag`` (the write's answer)."""
    patch: dict[str, Any] = {}
    touches = []
    for touch in item.touches:
        _put(patch, touch.path, None if touch.before is MISSING else copy_json(touch.before))
        touches.append(Touch(touch.path, touch.after, touch.before))
    return PreviewItem(item.device_id, item.module_id, Plan.CHANGE, etag, patch, tuple(touches))


def restore_patch(current: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """The minimal patch bringing ``current``'s tags and desired back to ``version``'s."""
    return make_patch(editable_part(current), editable_part(version))


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return json_equal(a, b)


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


def _document(touches: tuple[Touch, ...], side: str) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for touch in touches:
        value = getattr(touch, side)
        if value is not MISSING:
            _put(doc, touch.path, copy_json(value))
    return doc


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
