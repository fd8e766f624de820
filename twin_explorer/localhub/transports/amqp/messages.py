"""IoT Hub messages as AMQP messages, both ways (reference C.3-C.7, D.1).

Twin payloads, method payloads, telemetry and C2D travel as data sections; status codes
are AMQP int; correlation ids go back with the AMQP type they came with (gotcha 4).
Properties map to the same names the MQTT transport gives the core (``$.mid``, ``$.cid``,
``$.ct``, ``$.ce``, ``$.on``...), so telemetry and C2D look alike whichever way they came.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from twin_explorer.localhub.protocols.amqp import (
    Data,
    Int,
    Long,
    Message,
    Properties,
    Symbol,
    Timestamp,
    Value,
)

OUTPUT_NAME = "iothub-outputname"
INPUT_NAME = Symbol("x-opt-input-name")
METHOD_NAME = "IoThub-methodname"
METHOD_STATUS = "IoThub-status"
FEEDBACK_CONTENT_TYPE = Symbol("application/vnd.microsoft.iothub.feedback.json")

# AMQP properties <-> IoT Hub system properties (the MQTT property bag's names).
_SYSTEM = {
    "message_id": "$.mid",
    "correlation_id": "$.cid",
    "content_type": "$.ct",
    "content_encoding": "$.ce",
    "user_id": "$.uid",
}


def body_bytes(message: Message) -> bytes:
    """The payload: the data sections joined; an amqp-value string or bytes as such."""
    body = message.body
    if isinstance(body, Value):
        value = body.value
        if isinstance(value, bytes):
            return value
        return value.encode("utf-8") if isinstance(value, str) else b""
    return message.data


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        if len(value) == 16:
            return str(uuid.UUID(bytes=value))
        return value.decode("utf-8", "replace")
    return str(value)


def annotation(message: Message, key: str) -> Any:
    annotations = message.message_annotations or {}
    return annotations.get(Symbol(key), annotations.get(key))


def app_property(message: Message, key: str) -> Any:
    properties = message.application_properties or {}
    if key in properties:
        return properties[key]
    lowered = key.lower()
    for name, value in properties.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def correlation_id(message: Message) -> Any:
    return None if message.properties is None else message.properties.correlation_id


def message_id(message: Message) -> Any:
    return None if message.properties is None else message.properties.message_id


def telemetry_parts(message: Message) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(application properties, system properties, output name) of a D2C message."""
    custom: dict[str, Any] = {}
    output = None
    for key, value in (message.application_properties or {}).items():
        name = str(key)
        if name.lower() == OUTPUT_NAME:
            output = _text(value)
            continue
        custom[name] = None if value is None else _text(value)
    system: dict[str, Any] = {}
    props = message.properties
    if props is not None:
        for attr, key in _SYSTEM.items():
            value = getattr(props, attr, None)
            if value is not None:
                system[key] = _text(value)
    if output is not None:
        system["$.on"] = output
    return custom, system, output


def reply(
    correlation: Any,
    body: bytes,
    *,
    annotations: dict[Any, Any] | None = None,
    application: dict[Any, Any] | None = None,
) -> Message:
    """A response (twin, CBS, method) echoing ``correlation`` with its own type."""
    return Message(
        header=None,
        delivery_annotations=None,
        message_annotations=annotations,
        properties=Properties(correlation_id=correlation),
        application_properties=application,
        body=[Data(body)],
        footer=None,
    )


def twin_reply(correlation: Any, status: int, body: bytes, version: int | None) -> Message:
    annotations: dict[Any, Any] = {Symbol("status"): Int(status)}
    if version is not None:
        annotations[Symbol("version")] = Long(version)
    return reply(correlation, body, annotations=annotations)


def desired_push(patch_json: bytes, version: int) -> Message:
    """No correlation id: the SDKs read that as a desired patch (C.3)."""
    return Message(
        header=None,
        delivery_annotations=None,
        message_annotations={Symbol("version"): Long(version)},
        properties=None,
        application_properties=None,
        body=[Data(patch_json)],
        footer=None,
    )


def method_request(request_id: uuid.UUID, name: str, payload: bytes) -> Message:
    return Message(
        header=None,
        delivery_annotations=None,
        message_annotations=None,
        properties=Properties(correlation_id=request_id),
        application_properties={METHOD_NAME: name},
        body=[Data(payload)],
        footer=None,
    )


def c2d_properties(message: Message) -> tuple[dict[str, str], str | None, int | None]:
    """A service C2D message: (properties as the core keeps them, message id, expiry in
    ms since the epoch or None)."""
    properties: dict[str, str] = {}
    for key, value in (message.application_properties or {}).items():
        properties[str(key)] = "" if value is None else str(_text(value))
    props = message.properties
    mid = expiry = None
    if props is not None:
        mid = _text(props.message_id)
        for attr, key in _SYSTEM.items():
            value = getattr(props, attr, None)
            if value is not None and key != "$.mid":
                properties[key] = str(_text(value))
        if props.absolute_expiry_time is not None:
            expiry = int(props.absolute_expiry_time)
            # MQTT devices get it as ``$.exp`` (iothub-protocol.md A.11, observed topic).
            when = datetime.fromtimestamp(expiry / 1000, UTC)
            properties["$.exp"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return properties, mid, expiry


def c2d_message(
    message_id: str,
    device_id: str,
    body: bytes,
    properties: dict[str, Any],
    expiry_ns: int,
    enqueued_ns: int,
    delivery_count: int,
    lock_token: str,
) -> Message:
    """A queued C2D message as the device receives it (C.7)."""
    system = {key: properties[key] for key in _SYSTEM.values() if key in properties}
    custom = {k: v for k, v in properties.items() if not k.startswith("$.")}
    return Message(
        header=None,
        delivery_annotations=None,
        message_annotations={
            Symbol("iothub-enqueuedtime"): Timestamp(enqueued_ns // 1_000_000),
            Symbol("iothub-deliverycount"): Int(delivery_count - 1),
            Symbol("x-opt-lock-token"): lock_token,
        },
        properties=Properties(
            message_id=message_id,
            to=f"/devices/{device_id}/messages/deviceBound",
            correlation_id=system.get("$.cid"),
            content_type=None if "$.ct" not in system else Symbol(system["$.ct"]),
            content_encoding=None if "$.ce" not in system else Symbol(system["$.ce"]),
            absolute_expiry_time=Timestamp(expiry_ns // 1_000_000),
        ),
        application_properties=custom or None,
        body=[Data(body)],
        footer=None,
    )


def feedback(records: list[dict[str, Any]]) -> Message:
    """A batch of C2D feedback records for the service (reference D.2)."""
    return Message(
        properties=Properties(
            message_id=str(uuid.uuid4()),
            content_type=FEEDBACK_CONTENT_TYPE,
            content_encoding=Symbol("utf-8"),
        ),
        body=[Data(json.dumps(records).encode("utf-8"))],
    )
