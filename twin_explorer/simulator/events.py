"""What a simulated module tells its listeners: status changes and things it did.

Listeners are plain callables, always called on the module's event loop (SDK threads
hop onto it first), so a Qt panel under qasync may touch widgets directly and the
headless command may print. ``ModuleEvent.to_json`` is the headless line format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from twin_explorer.twin.clock import utc_now


class Status(StrEnum):
    IDLE = "idle"  # created, not started
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SYNCING = "syncing"  # reconnected: re-subscribing, fetching the twin, catching up
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"  # the SDK is retrying
    FAILED = "failed"  # the SDK stopped retrying (credentials), or the first connect failed
    CLOSED = "closed"

    @property
    def online(self) -> bool:
        return self in (Status.CONNECTED, Status.SYNCING)


class EventKind(StrEnum):
    STATUS = "status"
    TWIN = "twin"  # the twin as the module sees it was refreshed
    DESIRED_RECEIVED = "desired_received"
    REPORTED_SENT = "reported_sent"
    REPORT_FAILED = "report_failed"
    METHOD_REQUESTED = "method_requested"  # waiting for someone to answer it
    METHOD_ANSWERED = "method_answered"
    METHOD_EXPIRED = "method_expired"  # nobody answered before the method's timeout
    TELEMETRY_SENT = "telemetry_sent"
    TELEMETRY_FAILED = "telemetry_failed"
    MESSAGE_RECEIVED = "message_received"  # a cloud-to-device message (or its redelivery)
    MESSAGE_SETTLED = "message_settled"  # completed, rejected, abandoned, lock ran out
    INBOX = "inbox"  # how receiving C2D goes, in words


@dataclass(frozen=True)
class ModuleEvent:
    kind: EventKind
    identity: str  # "device/module" or "device"
    data: dict[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=utc_now)

    @property
    def name(self) -> str:
        """The event's name in headless output: the status itself for status events."""
        if self.kind is EventKind.STATUS:
            return str(self.data.get("status", "status"))
        return self.kind.value

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "event": self.name, "identity": self.identity, **self.data}


@dataclass
class Counters:
    desired_received: int = 0
    reported_sent: int = 0
    reported_failed: int = 0
    methods_answered: int = 0
    telemetry_sent: int = 0
    telemetry_failed: int = 0


Listener = Callable[[ModuleEvent], None]
