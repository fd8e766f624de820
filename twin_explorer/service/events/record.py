"""One event of the hub's stream, decoded once as it arrives: where it came from, who sent
it, its body (JSON pretty-printed, text or hex) and its system and application properties."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property
from typing import Any

SUMMARY_CHARS = 200
HEX_BYTES = 4096  # a binary body's hex dump stops here; the byte count says the rest


class Source(Enum):
    """What IoT Hub routes to the built-in endpoint (``iothub-message-source``)."""

    TELEMETRY = "telemetry"
    TWIN = "twin"
    LIFECYCLE = "lifecycle"
    CONNECTION = "connection"

    @classmethod
    def of(cls, message_source: str) -> Source:
        return _SOURCES.get(message_source.casefold(), cls.TELEMETRY)


_SOURCES = {
    "telemetry": Source.TELEMETRY,
    "twinchangeevents": Source.TWIN,
    "devicelifecycleevents": Source.LIFECYCLE,
    "deviceconnectionstateevents": Source.CONNECTION,
}


class Encoding(Enum):
    JSON = "JSON"
    TEXT = "text"
    HEX = "hex"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


# Property names, and the values that recur from event to event (who sent it, how it
# authenticated, its content type), kept once rather than once per event: most of a
# kept telemetry event's memory was these strings.
_RECURRING = frozenset(
    {
        "iothub-connection-device-id",
        "iothub-connection-module-id",
        "iothub-connection-auth-method",
        "iothub-connection-auth-generation-id",
        "iothub-message-source",
        "content-type",
        "content-encoding",
        "deviceId",
        "moduleId",
        "hubName",
        "opType",
    }
)
SHARED_MAX = 8192
_shared: dict[str, str] = {}


SHARED_CHARS = 512  # longer ones are rare and would make the table big


def shared(text: str) -> str:
    """One copy of a recurring string (a bounded table, emptied when full)."""
    kept = _shared.get(text)
    if kept is not None:
        return kept
    if len(text) > SHARED_CHARS:
        return text
    if len(_shared) >= SHARED_MAX:
        _shared.clear()
    _shared[text] = text
    return text


def shared_count() -> int:
    """How many strings the table keeps now."""
    return len(_shared)


def _texts(values: dict[Any, Any] | None) -> dict[str, str]:
    texts: dict[str, str] = {}
    for key, value in (values or {}).items():
        name = shared(_text(key))
        texts[name] = shared(_text(value)) if name in _RECURRING else _text(value)
    return texts


def decode(body: bytes) -> tuple[Encoding, str]:
    """The body as people read it: JSON pretty-printed, else UTF-8 text, else hex."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        dump = body[:HEX_BYTES].hex(" ")
        more = f" … ({len(body):,} bytes)" if len(body) > HEX_BYTES else ""
        return Encoding.HEX, dump + more
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or stripped in ("true", "false", "null"):
        try:
            return Encoding.JSON, json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    if stripped and stripped.lstrip("-").replace(".", "", 1).isdigit():
        return Encoding.JSON, stripped
    return Encoding.TEXT, text


@dataclass(frozen=True)
class EventRecord:
    """One event as the app keeps it (bytes and plain strings, no SDK objects)."""

    time: datetime  # when the hub enqueued it
    source: Source
    device_id: str
    module_id: str | None
    body: bytes
    system: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    partition: str = ""
    sequence: int = 0
    received: float = 0.0  # time.monotonic() when the app got it

    @property
    def identity(self) -> str:
        return f"{self.device_id}/{self.module_id}" if self.module_id else self.device_id

    @property
    def operation(self) -> str:
        """A notification's ``opType`` (``updateTwin``, ``deviceConnected``…), else ""."""
        return self.properties.get("opType", "")

    def decoded(self) -> tuple[Encoding, str]:
        return decode(self.body)

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @cached_property
    def clock(self) -> str:
        """The enqueued time of day to the millisecond, as the list shows it."""
        t = self.time
        return f"{t.hour:02}:{t.minute:02}:{t.second:02}.{t.microsecond // 1000:03}"

    @cached_property
    def summary(self) -> str:
        """One line for the list (made when first shown, then kept): the operation,
        then the body on one line."""
        encoding, text = self.decoded()
        if encoding is Encoding.JSON:
            text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
        line = " ".join(part for part in (self.operation, " ".join(text.split())) if part)
        return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"

    def to_json(self) -> dict[str, Any]:
        """What a recording holds per event (a JSON Lines row)."""
        encoding, text = self.decoded()
        body: Any = json.loads(text) if encoding is Encoding.JSON else text
        return {
            "time": self.time.astimezone(UTC).isoformat(),
            "source": self.source.value,
            "deviceId": self.device_id,
            "moduleId": self.module_id,
            "partition": self.partition,
            "sequenceNumber": self.sequence,
            "encoding": encoding.value,
            "body": body,
            "systemProperties": self.system,
            "properties": self.properties,
        }


def from_event_data(event: Any, partition: str = "", received: float = 0.0) -> EventRecord:
    """An ``azure.eventhub.EventData`` as a record. Notifications name their identity in
    application properties (``deviceId``, ``moduleId``) on Azure; telemetry in the
    ``iothub-connection-*`` annotations."""
    system = _texts(event.system_properties)
    properties = _texts(event.properties)
    device = system.get("iothub-connection-device-id") or properties.get("deviceId", "")
    module = system.get("iothub-connection-module-id") or properties.get("moduleId") or None
    when = event.enqueued_time or datetime.now(UTC)
    try:
        body = b"".join(event.body) if not isinstance(event.body, bytes) else event.body
    except TypeError:  # an AMQP value body (not data sections): show it as JSON text
        body = json.dumps(event.body, default=str).encode()
    return EventRecord(
        time=when,
        source=Source.of(system.get("iothub-message-source", "Telemetry")),
        device_id=device,
        module_id=module,
        body=body,
        system=system,
        properties=properties,
        partition=partition,
        sequence=event.sequence_number or 0,
        received=received,
    )
