"""Device messaging over HTTPS: telemetry in, cloud-to-device messages polled and settled.

MQTT pushes C2D messages to a subscribed connection; an HTTPS device polls for them
instead, one at a time, and settles each with the lock token it got (the ETag):
complete, reject or abandon. A lock that is unknown, ran out or was settled already is
``412 DeviceMessageLockLost`` (412002). Telemetry goes through ``DeviceOps.telemetry``,
the call MQTT makes, so it lands in the same event log.

Sizes are IoT Hub's: a message counts its body, the values of its system properties and
the names and values of its application properties; a message and a batch may each be
at most 256 KB (413 MessageTooLarge, 413001). HTTP clients are never "connected": each
request only moves lastActivityTime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twin_explorer.localhub.core.c2d import C2DMessage, C2DQueues
from twin_explorer.localhub.errors import HubError, argument_invalid

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.device_ops import DeviceOps

MAX_MESSAGE_BYTES = 256 * 1024  # one D2C message, and one batch of them
# IoT Hub bounds a batch by bytes only; this hub also bounds its count, so that a batch of
# empty messages cannot hold the loop (each message costs about 20 us to record).
MAX_BATCH_MESSAGES = 1000
# IoT Hub holds a received C2D message for a minute; clients may ask for another lock
# time (``iothub-messagelocktimeout``), which the hub keeps within these bounds.
DEFAULT_LOCK_SECONDS = 60
LOCK_SECONDS_RANGE = (1, 300)


def message_too_large(size: int | None, what: str = "message") -> HubError:
    """413 MessageTooLarge; ``size`` None when the request did not say how long it was."""
    measured = "too large" if size is None else f"{size} bytes"
    return HubError(
        413,
        "MessageTooLarge",
        413001,
        f"The {what} is {measured}; IoT Hub takes at most {MAX_MESSAGE_BYTES} bytes.",
    )


def check_batch_count(count: int) -> None:
    """400 for an empty batch; 413001 for one over this hub's count bound."""
    if not count:
        raise argument_invalid("The batch holds no messages.")
    if count > MAX_BATCH_MESSAGES:
        raise HubError(
            413,
            "MessageTooLarge",
            413001,
            f"The batch holds {count} messages; this hub takes at most {MAX_BATCH_MESSAGES} "
            "in one batch.",
        )


@dataclass(frozen=True, slots=True)
class D2CMessage:
    """A device-to-cloud message as the core records it (system keys as MQTT names them,
    ``$.mid``, ``$.ct``, ...)."""

    body: bytes
    properties: dict[str, str] = field(default_factory=dict)
    system_properties: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """What IoT Hub counts against its 256 KB limit."""
        app = sum(len(k.encode()) + len(v.encode()) for k, v in self.properties.items())
        system = sum(len(v.encode()) for v in self.system_properties.values())
        return len(self.body) + app + system


class DeviceMessages:
    """The HTTPS device surface of the core: telemetry and C2D polling."""

    def __init__(
        self,
        devices: DeviceOps,
        c2d: C2DQueues,
        offer_c2d: Callable[[str], None],
    ) -> None:
        self._devices = devices
        self._c2d = c2d
        self._offer_c2d = offer_c2d

    # -- device to cloud ----------------------------------------------------------------

    def send_events(self, identity: Identity, messages: Sequence[D2CMessage]) -> None:
        """Record one message or a batch, all or nothing: 413001 when one message or the
        whole batch is over 256 KB, 400 for an empty batch. Answer the device from
        ``DeviceOps.after_commit``, once the event log has them."""
        check_batch_count(len(messages))
        total = 0
        for message in messages:
            size = message.size
            if size > MAX_MESSAGE_BYTES:
                raise message_too_large(size)
            total += size
        if total > MAX_MESSAGE_BYTES:
            raise message_too_large(total, "batch")
        for message in messages:
            self._devices.telemetry(
                identity, message.properties, message.system_properties, message.body
            )
        self._devices.activity(identity)

    # -- cloud to device ----------------------------------------------------------------

    def receive(self, identity: Identity, lock_seconds: int | None = None) -> C2DMessage | None:
        """The device's next C2D message, locked for ``lock_seconds`` (IoT Hub's minute
        by default) under its ``lock_token``; None when its queue is empty."""
        self._devices.activity(identity)
        seconds = DEFAULT_LOCK_SECONDS if lock_seconds is None else lock_seconds
        return self._c2d.receive(identity.device_id, lock_ns=seconds * 10**9)

    def complete(self, identity: Identity, lock_token: str) -> C2DMessage:
        """The device took the message: it leaves the queue. 412002 for a lost lock."""
        self._devices.activity(identity)
        return self._c2d.complete(identity.device_id, lock_token)

    def reject(self, identity: Identity, lock_token: str) -> C2DMessage:
        """The device refused the message: dead-lettered. 412002 for a lost lock."""
        self._devices.activity(identity)
        return self._c2d.reject(identity.device_id, lock_token)

    def abandon(self, identity: Identity, lock_token: str) -> C2DMessage:
        """The device gave the message back: first in line again (dead-lettered after
        too many deliveries). 412002 for a lost lock."""
        self._devices.activity(identity)
        message = self._c2d.abandon(identity.device_id, lock_token)
        self._offer_c2d(identity.device_id)  # an MQTT connection of the device may take it
        return message
