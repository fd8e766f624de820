"""AMQP 1.0 bare and annotated message (spec 3.2): sections in, sections out.

A message is a sequence of described sections: header, delivery-annotations,
message-annotations, properties, application-properties, body (data sections, one
amqp-value or amqp-sequence sections) and footer. Ids keep their AMQP type (string, uuid,
ulong, binary) so replies echo them exactly (reference gotcha 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .composite import Composite
from .exceptions import AmqpDecodeError
from .types import Described, ULong, decode_value, encode_into


@Composite.register
@dataclass
class Header(Composite):
    DESCRIPTOR = 0x70
    NAME = "amqp:header:list"
    KINDS = "bool ubyte uint bool uint"
    durable: bool | None = None
    priority: int | None = None
    ttl: int | None = None
    first_acquirer: bool | None = None
    delivery_count: int | None = None


@Composite.register
@dataclass
class Properties(Composite):
    DESCRIPTOR = 0x73
    NAME = "amqp:properties:list"
    KINDS = "id binary address str address id symbol symbol timestamp timestamp str uint str"
    message_id: Any = None
    user_id: bytes | None = None
    to: str | None = None
    subject: str | None = None
    reply_to: str | None = None
    correlation_id: Any = None
    content_type: str | None = None
    content_encoding: str | None = None
    absolute_expiry_time: int | None = None
    creation_time: int | None = None
    group_id: str | None = None
    group_sequence: int | None = None
    reply_to_group_id: str | None = None


@dataclass(frozen=True)
class Data:
    """One data section: opaque bytes (IoT Hub payloads travel this way)."""

    content: bytes


@dataclass(frozen=True)
class Value:
    """The amqp-value body: one AMQP value (CBS tokens, $management maps)."""

    value: Any


@dataclass(frozen=True)
class Sequence:
    """One amqp-sequence section."""

    items: list[Any]


Body = list[Data] | Value | list[Sequence]

_DELIVERY_ANNOTATIONS = 0x71
_MESSAGE_ANNOTATIONS = 0x72
_APPLICATION_PROPERTIES = 0x74
_DATA = 0x75
_SEQUENCE = 0x76
_VALUE = 0x77
_FOOTER = 0x78
_SECTION_FIELDS = {0x70: "header", _DELIVERY_ANNOTATIONS: "delivery_annotations",
                   _MESSAGE_ANNOTATIONS: "message_annotations", 0x73: "properties",
                   _APPLICATION_PROPERTIES: "application_properties", _FOOTER: "footer"}
_MAP_SECTIONS = (_DELIVERY_ANNOTATIONS, _MESSAGE_ANNOTATIONS, _APPLICATION_PROPERTIES, _FOOTER)
_ORDER = {0x70: 0, 0x71: 1, 0x72: 2, 0x73: 3, 0x74: 4, 0x75: 5, 0x76: 5, 0x77: 5, 0x78: 6}


@dataclass
class Message:
    header: Header | None = None
    delivery_annotations: dict | None = None
    message_annotations: dict | None = None
    properties: Properties | None = None
    application_properties: dict | None = None
    body: Body = field(default_factory=list)
    footer: dict | None = None

    @property
    def data(self) -> bytes:
        """The data sections' bytes joined (b"" for a value or sequence body)."""
        if isinstance(self.body, list):
            return b"".join(s.content for s in self.body if isinstance(s, Data))
        return b""


def _section(code: int, value: Any, out: bytearray) -> None:
    out += bytes((0x00, 0x53, code))
    encode_into(value, out)


def encode_message(message: Message) -> bytes:
    out = bytearray()
    if message.header is not None:
        encode_into(message.header, out)
    if message.delivery_annotations is not None:
        _section(_DELIVERY_ANNOTATIONS, message.delivery_annotations, out)
    if message.message_annotations is not None:
        _section(_MESSAGE_ANNOTATIONS, message.message_annotations, out)
    if message.properties is not None:
        encode_into(message.properties, out)
    if message.application_properties is not None:
        _section(_APPLICATION_PROPERTIES, message.application_properties, out)
    body = message.body
    if isinstance(body, Value):
        _section(_VALUE, body.value, out)
    else:
        for section in body:
            if isinstance(section, Data):
                _section(_DATA, bytes(section.content), out)
            elif isinstance(section, Sequence):
                _section(_SEQUENCE, list(section.items), out)
            else:
                raise TypeError(f"not a body section: {type(section).__name__}")
    if message.footer is not None:
        _section(_FOOTER, message.footer, out)
    return bytes(out)


def decode_message(data: bytes) -> Message:
    """Decode a message; sections out of order, repeated or unknown raise AmqpDecodeError."""
    message = Message()
    body: list[Any] = []
    pos = 0
    last = -1
    while pos < len(data):
        section, pos = decode_value(data, pos)
        if isinstance(section, Header):
            code, value = 0x70, section
        elif isinstance(section, Properties):
            code, value = 0x73, section
        elif isinstance(section, Described) and isinstance(section.descriptor, ULong):
            code, value = int(section.descriptor), section.value
        else:
            raise AmqpDecodeError("not a message section")
        order = _ORDER.get(code)
        if order is None:
            raise AmqpDecodeError(f"unknown message section 0x{code:02x}")
        if order < last or (order == last and order != 5):
            raise AmqpDecodeError("message sections out of order")
        last = order
        name = _SECTION_FIELDS.get(code)
        if name is None:
            body.append((code, value))
        else:
            if code in _MAP_SECTIONS and not isinstance(value, dict):
                raise AmqpDecodeError(f"message section 0x{code:02x} is not a map")
            setattr(message, name, value)
    message.body = _body(body)
    return message


def _body(sections: list[tuple[int, Any]]) -> Body:
    kinds = {code for code, _ in sections}
    if len(kinds) > 1 or (kinds == {_VALUE} and len(sections) > 1):
        raise AmqpDecodeError("a message body mixes section kinds")
    if kinds == {_VALUE}:
        return Value(sections[0][1])
    if kinds == {_SEQUENCE}:
        if not all(isinstance(v, list) for _, v in sections):
            raise AmqpDecodeError("amqp-sequence section is not a list")
        return [Sequence(v) for _, v in sections]
    if not all(isinstance(v, bytes) for _, v in sections):
        raise AmqpDecodeError("data section is not binary")
    return [Data(v) for _, v in sections]
