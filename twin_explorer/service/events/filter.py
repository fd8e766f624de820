"""Which events the Events view shows: identity wildcards, sources and the identities a
twin query matched."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property

from twin_explorer.service.events.record import EventRecord, Source

ALL_SOURCES = frozenset(Source)


def _glob(pattern: str) -> str:
    """A pattern without wildcards matches as a substring (typing "sens" finds sensor-1)."""
    pattern = pattern.strip().casefold()
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return pattern


@dataclass(frozen=True)
class EventFilter:
    """``identity``: ``device`` or ``device/module`` with ``*``/``?`` wildcards (empty:
    everyone); ``sources``: the kinds shown; ``ids``: the identities a twin query matched
    (``device`` lets its modules through too; None: no query)."""

    identity: str = ""
    sources: frozenset[Source] = field(default=ALL_SOURCES)
    ids: frozenset[str] | None = None

    @cached_property
    def _patterns(self) -> tuple[str, str | None]:
        device, slash, module = self.identity.partition("/")
        return _glob(device), (_glob(module) or "*") if slash else None

    @property
    def is_empty(self) -> bool:
        return not self.identity.strip() and self.sources == ALL_SOURCES and self.ids is None

    def matches(self, record: EventRecord) -> bool:
        if record.source not in self.sources:
            return False
        ids = self.ids
        if ids is not None and record.device_id not in ids and record.identity not in ids:
            return False
        device, module = self._patterns
        if not device:
            return True
        if module is None:  # one pattern: the device id or the whole identity
            return fnmatchcase(record.device_id.casefold(), device) or fnmatchcase(
                record.identity.casefold(), device
            )
        return fnmatchcase(record.device_id.casefold(), device) and fnmatchcase(
            (record.module_id or "").casefold(), module
        )
