"""A cloud-to-device message as a person fills it in, what is wrong with it in plain
words, and the AMQP message IoT Hub takes at ``/messages/devicebound``."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024  # IoT Hub's limit for one C2D message, body and properties
MAX_TTL_SECONDS = 2 * 24 * 3600  # IoT Hub keeps a C2D message at most two days
MAX_ID_LENGTH = 128
ACK_PROPERTY = "iothub-ack"
JSON_TYPES = ("application/json",)


class Ack(Enum):
    """The feedback asked for (``iothub-ack``)."""

    NONE = "none"
    POSITIVE = "positive"  # hear when the device completed it
    NEGATIVE = "negative"  # hear when it was rejected, expired or delivered too often
    FULL = "full"  # hear either way

    @property
    def label(self) -> str:
        return {
            Ack.NONE: "None",
            Ack.POSITIVE: "When completed (positive)",
            Ack.NEGATIVE: "When not delivered (negative)",
            Ack.FULL: "Always (full)",
        }[self]


def new_message_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class OutgoingMessage:
    device_id: str
    body: str = ""
    content_type: str = ""
    content_encoding: str = ""
    properties: tuple[tuple[str, str], ...] = ()  # application properties, in order
    message_id: str = field(default_factory=new_message_id)
    ttl_seconds: int | None = None  # None: the hub's default (one hour)
    ack: Ack = Ack.NONE
    correlation_id: str = ""

    @property
    def to(self) -> str:
        return f"/devices/{self.device_id}/messages/devicebound"

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8")

    def application_properties(self) -> dict[str, str]:
        found = dict(self.properties)
        if self.ack is not Ack.NONE:
            found[ACK_PROPERTY] = self.ack.value
        return found

    @property
    def size(self) -> int:
        """Bytes counted against IoT Hub's 64 KB: the body and the properties."""
        system = (self.message_id, self.content_type, self.content_encoding, self.correlation_id)
        props = sum(len(k.encode()) + len(v.encode()) for k, v in self.properties)
        return len(self.body_bytes) + props + sum(len(s.encode()) for s in system)


def problems(message: OutgoingMessage) -> list[str]:
    """What must change before the message can go, in plain words (empty when it can)."""
    found: list[str] = []
    if not message.device_id:
        found.append("Choose a device.")
    message_id = message.message_id.strip()
    if not message_id:
        found.append("The message id is empty (leave the generated one if in doubt).")
    elif len(message_id) > MAX_ID_LENGTH:
        found.append(f"The message id is longer than {MAX_ID_LENGTH} characters.")
    if len(message.correlation_id) > MAX_ID_LENGTH:
        found.append(f"The correlation id is longer than {MAX_ID_LENGTH} characters.")
    if message.ttl_seconds is not None and not 1 <= message.ttl_seconds <= MAX_TTL_SECONDS:
        found.append(
            f"The time to live must be between 1 and {MAX_TTL_SECONDS:,} seconds (two days)."
        )
    too_large = message.size > MAX_MESSAGE_BYTES
    # Over the limit it cannot go anyway: no parsing a pasted megabyte at every keystroke.
    if (
        message.content_type.strip().lower() in JSON_TYPES
        and message.body.strip()
        and not too_large
    ):
        try:
            json.loads(message.body)
        except ValueError as exc:
            found.append(f"The body is not valid JSON ({exc}); fix it or change the content type.")
    seen: set[str] = set()
    for number, (key, _value) in enumerate(message.properties, 1):
        if not key.strip():
            found.append(f"Property {number} has no name.")
        elif key in seen:
            found.append(f"The property {key!r} is there twice.")
        elif key.lower().startswith("iothub-"):
            found.append(
                f"The property {key!r} is reserved by IoT Hub (choose the feedback above)."
            )
        seen.add(key)
    if too_large:
        found.append(
            f"The message is {message.size:,} bytes; IoT Hub takes at most "
            f"{MAX_MESSAGE_BYTES:,} bytes (64 KB)."
        )
    return found


def to_amqp(message: OutgoingMessage, now: float | None = None) -> Any:
    """The ``uamqp.Message`` azure-iot-hub would build, with the expiry as an absolute
    time (milliseconds since the epoch) from the time to live."""
    import uamqp  # only where the AMQP client runs: importing it loads its C extension

    properties = uamqp.message.MessageProperties(
        message_id=message.message_id.strip(),
        to=message.to,
        content_type=message.content_type.strip() or None,
        content_encoding=message.content_encoding.strip() or None,
        correlation_id=message.correlation_id.strip() or None,
        absolute_expiry_time=(
            None
            if message.ttl_seconds is None
            else int(((now if now is not None else time.time()) + message.ttl_seconds) * 1000)
        ),
    )
    return uamqp.Message(
        message.body_bytes,
        properties=properties,
        application_properties=message.application_properties(),
    )
