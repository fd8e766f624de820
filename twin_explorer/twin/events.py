"""Patch events: every patch the app sends, receives or observes, in one stream.

The patch log and the twin history read this stream; the service facade, the twin
watcher and simulated modules write to it. Pure data and a synchronous fan-out: the
producers that live on other threads hop onto the event loop before publishing.

Direct method calls travel in the same stream (section ``method``, made by
``method_call``): the app invoking one is ``sent``, a simulated module answering one is
``received``. They change no twin, so twin history and watching skip them
(``changes_twin``), while the log shows, filters and exports them like any row.
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
    METHOD = "method"  # a direct method call and its answer (no twin change)


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

    @property
    def changes_twin(self) -> bool:
        """False for events that only travel in the stream (direct method calls)."""
        return self.section is not Section.METHOD

    def compact(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    def summary(self) -> str | None:
        """A one-line reading of a method call (None for patches: their JSON says it)."""
        if self.section is not Section.METHOD:
            return None
        body = self.body
        call = f"{body.get('method')}({_short(body.get('payload'))})"
        if body.get("status") is None:
            outcome = f"no answer: {body.get('error') or 'unknown'}"
        else:
            outcome = f"{body['status']} {_short(body.get('response'))}"
        who = f" · {body['answeredBy']}" if body.get("answeredBy") else ""
        return f"{call} → {outcome} · {body.get('ms', 0)} ms{who}"

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


def _short(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def method_call(
    device_id: str,
    module_id: str | None,
    direction: Direction,
    *,
    name: str,
    payload: Any,
    status: int | None,
    response: Any = None,
    seconds: float,
    answered_by: str,
    error: str | None = None,
    source: str = "",
) -> PatchEvent:
    """A direct method call as a stream event: what was asked, what came back, how long
    it took and who answered ("rule", "asked: answered by you", "timeout", …)."""
    body: dict[str, Any] = {
        "method": name,
        "payload": payload,
        "status": status,
        "response": response,
        "ms": round(seconds * 1000),
        "answeredBy": answered_by,
    }
    if error is not None:
        body["error"] = error
    return PatchEvent(device_id, module_id, direction, Section.METHOD, body, source=source)


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
