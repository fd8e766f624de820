"""Desired versus reported: has the device caught up with each desired value?

For every desired leaf (a value that is not a non-empty object; arrays are leaves, as
they travel whole) the reported side at the same path either holds the same value
(matching), holds something else (pending: the device has not applied it, or reported
a different value), or was never reported. Times and versions come from ``$metadata``
(reference C.2): desired nodes carry ``$lastUpdated`` and ``$lastUpdatedVersion``,
reported nodes ``$lastUpdated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from twin_explorer.service.edit_text import MISSING, value_at
from twin_explorer.twin.limits import BOOKKEEPING_KEYS
from twin_explorer.twin.metadata import LAST_UPDATED, LAST_UPDATED_VERSION


class SyncState(StrEnum):
    MATCHING = "matching"
    PENDING = "pending"
    NEVER = "never reported"


@dataclass(frozen=True)
class DesiredStatus:
    path: tuple[str, ...]  # keys inside desired
    desired: Any
    reported: Any  # None when never reported
    state: SyncState
    desired_updated: str | None  # $lastUpdated of the desired value
    desired_version: int | None  # $lastUpdatedVersion: the desired $version that wrote it
    reported_updated: str | None  # $lastUpdated of the reported value
    reported_version: int | None  # the reported section's $version now
    note: str = ""

    @property
    def label(self) -> str:
        return ".".join(self.path)


def desired_vs_reported(twin: dict[str, Any]) -> list[DesiredStatus]:
    """One status per desired leaf of a service-view twin, in the hub's key order."""
    properties = twin.get("properties") or {}
    desired = properties.get("desired") or {}
    reported = properties.get("reported") or {}
    desired_meta = desired.get("$metadata") or {}
    reported_meta = reported.get("$metadata") or {}
    reported_version = reported.get("$version")
    rows: list[DesiredStatus] = []
    for path, value in _leaves(desired, ()):
        have = value_at(reported, path)
        d_node = value_at(desired_meta, path)
        r_node = value_at(reported_meta, path) if have is not MISSING else MISSING
        d_updated = _meta(d_node, LAST_UPDATED)
        r_updated = _meta(r_node, LAST_UPDATED)
        if have is MISSING:
            state, note = SyncState.NEVER, "The device has not reported this property."
        elif _same(value, have):
            state, note = SyncState.MATCHING, ""
        else:
            state = SyncState.PENDING
            note = "The device has not reported this value yet."
            if _later(r_updated, d_updated):
                note = "The device reported a different value after this desired change."
        rows.append(
            DesiredStatus(
                path=path,
                desired=value,
                reported=None if have is MISSING else have,
                state=state,
                desired_updated=d_updated,
                desired_version=_meta(d_node, LAST_UPDATED_VERSION),
                reported_updated=r_updated,
                reported_version=reported_version if isinstance(reported_version, int) else None,
                note=note,
            )
        )
    return rows


def summary(rows: list[DesiredStatus]) -> dict[SyncState, int]:
    counts = dict.fromkeys(SyncState, 0)
    for row in rows:
        counts[row.state] += 1
    return counts


def _leaves(node: dict, path: tuple[str, ...]):
    for key, value in node.items():
        if not path and key in BOOKKEEPING_KEYS:
            continue
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def _meta(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, dict) else None


def _later(a: Any, b: Any) -> bool:
    """Whether timestamp ``a`` is after ``b``; the hub writes 0, 3 or 7 fractional digits."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return _sortable(a) > _sortable(b)


def _sortable(stamp: str) -> str:
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{whole}.{fraction:0<7}"


def _same(a: Any, b: Any) -> bool:
    """JSON equality where 1 and 1.0 match (a device may echo a number either way), but
    true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
