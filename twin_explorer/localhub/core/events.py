"""Hub events: frozen facts the core publishes once something has happened.

The event log stores them (the Event Hub-compatible endpoint will read it), and the app
will read them as one stream. Subscribers run synchronously on the thread that wrote;
one that fails is logged and the others still run: the write has happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HubEvent:
    device_id: str
    module_id: str | None
    time: str  # ISO 8601, as the core formats every timestamp

    kind = "event"


@dataclass(frozen=True, slots=True)
class TelemetryReceived(HubEvent):
    properties: dict[str, Any] = field(default_factory=dict)
    system_properties: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    kind = "telemetry"


@dataclass(frozen=True, slots=True)
class TwinChanged(HubEvent):
    """A twin section changed: ``patch`` is what was merged, ``version`` the twin's new
    version of that section (``$version``)."""

    section: str = "desired"
    version: int = 0
    patch: dict[str, Any] = field(default_factory=dict)
    # IoT Hub's notification: updateTwin or replaceTwin, and the body it routes (the
    # twin's version and the changed parts: tags, properties.desired/reported).
    op_type: str = "updateTwin"
    notification: dict[str, Any] = field(default_factory=dict)

    kind = "twinChangeEvents"


@dataclass(frozen=True, slots=True)
class IdentityCreated(HubEvent):
    kind = "deviceLifecycleEvents"


@dataclass(frozen=True, slots=True)
class IdentityDeleted(HubEvent):
    kind = "deviceLifecycleEvents"


@dataclass(frozen=True, slots=True)
class Connected(HubEvent):
    kind = "deviceConnectionStateEvents"


@dataclass(frozen=True, slots=True)
class Disconnected(HubEvent):
    kind = "deviceConnectionStateEvents"


Subscriber = Callable[[HubEvent], None]


class EventBus:
    """Publish hub events to whoever subscribed, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns the way to unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: HubEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception(
                    "hub event subscriber %r failed on %s", callback, type(event).__name__
                )
