"""Patch events: every patch the app sends, receives or observes, in one stream.

The patch log and the twin history read this stream; the service facade, the twin
watcher and simulated modules write to it. Pure data and a synchronous fan-out: the
producers that live on other threads hop onto the event loop before publishing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from twin_explorer.twin.clock import utc_now
from twin_explorer.twin.identity import identity_path


class Direction(StrEnum):
    SENT = "sent"  # this app sent it to the hub (service patch, replace)
    RECEIVED = "received"  # a simulated module received it (desired patch)
    REPORTED = "reported"  # a simulated module reported it
    OBSERVED = "observed"  # seen on a watched twin, made by someone else


class Section(StrEnum):
    DESIRED = "desired"
    REPORTED = "reported"
    TAGS = "tags"
    TWIN = "twin"  # a whole-twin change (replace), or tags and desired together


_ids = itertools.count(1)


@dataclass(frozen=True)
class PatchEvent:
    device_id: str
    module_id: str | None
    direction: Direction
    section: Section
    body: dict[str, Any]
    version: int | None = None  # the section's $version after the patch, when known
    time: str = field(default_factory=utc_now)
    source: str = ""  # who produced it: "editor", "watch", "simulator:<id>", …
    id: int = field(default_factory=lambda: next(_ids))
    # The whole twin after the patch, when the producer has it (a save's answer): the
    # watched twin's history takes it at once instead of waiting for the next poll.
    twin: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def identity(self) -> str:
        return identity_path(self.device_id, self.module_id)

    def compact(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "identity": self.identity,
            "deviceId": self.device_id,
            "moduleId": self.module_id,
            "direction": self.direction.value,
            "section": self.section.value,
            "version": self.version,
            "source": self.source,
            "body": self.body,
        }


Listener = Callable[[PatchEvent], None]


class PatchStream:
    """Fan-out of patch events to listeners; a failing listener never stops the others."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.errors: list[BaseException] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: PatchEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # one broken view must not silence the log
                self.errors = [*self.errors[-9:], exc]
