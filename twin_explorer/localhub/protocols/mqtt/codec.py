"""MQTT 3.1.1 wire format: `encode(packet) -> bytes` and an incremental `Decoder`.

The decoder is fed arbitrary slices of a byte stream (one byte at a time, or many packets at
once) and yields whole packets. It never buffers more than one packet of at most
`max_packet_size` bytes: the size is checked as soon as the fixed header is complete, before
the body arrives. Anything malformed raises `MqttProtocolError`, which is fatal for the
connection; a merely incomplete packet is not an error, it just waits for more bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .errors import LocalProtocolError, MqttProtocolError
from .packets import (
    MAX_REMAINING_LENGTH,
    SUBACK_FAILURE,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    Will,
)

# IoT Hub caps a device-to-cloud message at 256 KB (reference A.10, C.6); allow on top of it the
# largest possible topic (a property bag can be long), its length prefix, a packet id and the
# fixed header.
MAX_MESSAGE_SIZE = 256 * 1024
DEFAULT_MAX_PACKET_SIZE = MAX_MESSAGE_SIZE + 5 + 2 + 0xFFFF + 2

_MAX_STRING = 0xFFFF

# Flags the fixed header must carry for every type except PUBLISH (MQTT 3.1.1, 2.2.2).
_REQUIRED_FLAGS = {t: 0 for t in PacketType if t is not PacketType.PUBLISH}
_REQUIRED_FLAGS.update(
    {PacketType.PUBREL: 0b0010, PacketType.SUBSCRIBE: 0b0010, PacketType.UNSUBSCRIBE: 0b0010}
)

# Types whose remaining length is fixed: a wrong length is rejected before buffering the body.
_FIXED_LENGTH = {
    PacketType.CONNACK: 2,
    PacketType.PUBACK: 2,
    PacketType.PUBREC: 2,
    PacketType.PUBREL: 2,
    PacketType.PUBCOMP: 2,
    PacketType.UNSUBACK: 2,
    PacketType.PINGREQ: 0,
    PacketType.PINGRESP: 0,
    PacketType.DISCONNECT: 0,
}


# --------------------------------------------------------------------------------------------
# Encoding


def _str(value: str) -> bytes:
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"string is not encodable as UTF-8: {value!r}") from exc
    if "\x00" in value:
        raise LocalProtocolError("MQTT strings must not contain U+0000")
    return _bin(data)


def _bin(data: bytes) -> bytes:
    if len(data) > _MAX_STRING:
        raise LocalProtocolError(f"field of {len(data)} bytes exceeds {_MAX_STRING}")
    return struct.pack("!H", len(data)) + data


def _packet_id(packet_id: int | None) -> bytes:
    if packet_id is None or not 1 <= packet_id <= 0xFFFF:
        raise LocalProtocolError(f"packet id must be 1..65535, not {packet_id!r}")
    return struct.pack("!H", packet_id)


def _qos(qos: int) -> int:
    if qos not in (0, 1, 2):
        raise LocalProtocolError(f"QoS must be 0, 1 or 2, not {qos!r}")
    return qos


def encode_remaining_length(length: int) -> bytes:
    if not 0 <= length <= MAX_REMAINING_LENGTH:
        raise LocalProtocolError(f"remaining length {length} out of range")
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _encode_connect(p: Connect) -> tuple[int, bytes]:
    flags = 0x02 if p.clean_session else 0
    payload = _str(p.client_id)
    if p.will is not None:
        flags |= 0x04 | (_qos(p.will.qos) << 3) | (0x20 if p.will.retain else 0)
        payload += _str(p.will.topic) + _bin(p.will.message)
    if p.username is not None:
        flags |= 0x80
        payload += _str(p.username)
    if p.password is not None:
        if p.username is None:
            raise LocalProtocolError("a password requires a username in MQTT 3.1.1")
        flags |= 0x40
        payload += _bin(p.password)
    if not 0 <= p.keepalive <= 0xFFFF:
        raise LocalProtocolError(f"keepalive {p.keepalive} out of range")
    header = _str(p.protocol_name) + struct.pack("!BBH", p.protocol_level, flags, p.keepalive)
    return 0, header + payload


def _encode_connack(p: Connack) -> tuple[int, bytes]:
    if not 0 <= p.return_code <= 5:
        raise LocalProtocolError(f"CONNACK return code {p.return_code} is reserved")
    return 0, bytes([1 if p.session_present else 0, p.return_code])


def _encode_publish(p: Publish) -> tuple[int, bytes]:
    qos = _qos(p.qos)
    if qos == 0 and (p.packet_id is not None or p.dup):
        raise LocalProtocolError("a QoS 0 PUBLISH has neither packet id nor DUP")
    if not p.topic or "+" in p.topic or "#" in p.topic:
        raise LocalProtocolError(f"invalid topic name {p.topic!r}")
    flags = (0x08 if p.dup else 0) | (qos << 1) | (0x01 if p.retain else 0)
    body = _str(p.topic) + (_packet_id(p.packet_id) if qos else b"") + bytes(p.payload)
    return flags, body


def _encode_subscribe(p: Subscribe) -> tuple[int, bytes]:
    if not p.topics:
        raise LocalProtocolError("SUBSCRIBE needs at least one topic filter")
    body = _packet_id(p.packet_id)
    for topic_filter, qos in p.topics:
        body += _str(topic_filter) + bytes([_qos(qos)])
    return 0b0010, body


def _encode_suback(p: Suback) -> tuple[int, bytes]:
    if not p.return_codes or any(c not in (0, 1, 2, SUBACK_FAILURE) for c in p.return_codes):
        raise LocalProtocolError(f"invalid SUBACK return codes {p.return_codes!r}")
    return 0, _packet_id(p.packet_id) + bytes(p.return_codes)


def _encode_unsubscribe(p: Unsubscribe) -> tuple[int, bytes]:
    if not p.topics:
        raise LocalProtocolError("UNSUBSCRIBE needs at least one topic filter")
    return 0b0010, _packet_id(p.packet_id) + b"".join(_str(t) for t in p.topics)


def _encoder_for(packet_type: PacketType) -> Callable[[Packet], tuple[int, bytes]]:
    """Encoder of the packets whose body is nothing or just a packet id."""
    flags = _REQUIRED_FLAGS[packet_type]
    if packet_type in (PacketType.PINGREQ, PacketType.PINGRESP, PacketType.DISCONNECT):
        return lambda p: (flags, b"")
    return lambda p: (flags, _packet_id(p.packet_id))  # type: ignore[union-attr]


_ENCODERS: dict[type, tuple[PacketType, Callable]] = {
    Connect: (PacketType.CONNECT, _encode_connect),
    Connack: (PacketType.CONNACK, _encode_connack),
    Publish: (PacketType.PUBLISH, _encode_publish),
    Subscribe: (PacketType.SUBSCRIBE, _encode_subscribe),
    Suback: (PacketType.SUBACK, _encode_suback),
    Unsubscribe: (PacketType.UNSUBSCRIBE, _encode_unsubscribe),
}
for _cls, _type in (
    (Puback, PacketType.PUBACK),
    (Pubrec, PacketType.PUBREC),
    (Pubrel, PacketType.PUBREL),
    (Pubcomp, PacketType.PUBCOMP),
    (Unsuback, PacketType.UNSUBACK),
    (Pingreq, PacketType.PINGREQ),
    (Pingresp, PacketType.PINGRESP),
    (Disconnect, PacketType.DISCONNECT),
):
    _ENCODERS[_cls] = (_type, _encoder_for(_type))


def encode(packet: Packet) -> bytes:
    """Serialise one packet. Raises `LocalProtocolError` for a packet MQTT cannot express."""
    try:
        packet_type, encoder = _ENCODERS[type(packet)]
    except KeyError:
        raise LocalProtocolError(f"not an MQTT packet: {packet!r}") from None
    flags, body = encoder(packet)
    return bytes([(packet_type << 4) | flags]) + encode_remaining_length(len(body)) + body


# --------------------------------------------------------------------------------------------
# Decoding


class _Reader:
    """Cursor over one packet body; every read past the end is a malformed packet."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise MqttProtocolError(f"{self._what} is truncated")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return struct.unpack("!H", self._take(2))[0]

    def packet_id(self) -> int:
        packet_id = self.u16()
        if packet_id == 0:
            raise MqttProtocolError(f"{self._what} has packet id 0")  # MQTT-2.3.1-1
        return packet_id

    def binary(self) -> bytes:
        return self._take(self.u16())

    def string(self) -> str:
        return decode_string(self.binary(), self._what)

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    @property
    def at_end(self) -> bool:
        return self._pos == len(self._data)

    def expect_end(self) -> None:
        if not self.at_end:
            raise MqttProtocolError(f"{self._what} has {len(self._data) - self._pos} extra bytes")


def decode_string(data: bytes, what: str = "string") -> str:
    """UTF-8 per MQTT 3.1.1, 1.5.3: well formed (so no surrogates) and no U+0000."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MqttProtocolError(f"{what} contains invalid UTF-8") from exc
    if "\x00" in text:
        raise MqttProtocolError(f"{what} contains U+0000")  # MQTT-1.5.3-2
    return text


def _decode_connect(flags: int, r: _Reader) -> Connect:
    protocol_name = r.string()
    protocol_level = r.u8()
    if protocol_level not in (3, 4):
        # Later levels (MQTT 5) lay the packet out differently; nothing below would parse.
        raise MqttProtocolError(f"unsupported protocol level {protocol_level}")
    connect_flags = r.u8()
    keepalive = r.u16()
    if connect_flags & 0x01:
        raise MqttProtocolError("CONNECT reserved flag is set")  # MQTT-3.1.2-3
    has_will = bool(connect_flags & 0x04)
    will_qos = (connect_flags >> 3) & 0x03
    will_retain = bool(connect_flags & 0x20)
    if will_qos == 3:
        raise MqttProtocolError("CONNECT will QoS is 3")  # MQTT-3.1.2-14
    if not has_will and (will_qos or will_retain):
        raise MqttProtocolError("CONNECT will QoS/retain set without a will")  # MQTT-3.1.2-13/15
    has_username = bool(connect_flags & 0x80)
    has_password = bool(connect_flags & 0x40)
    if has_password and not has_username:
        raise MqttProtocolError("CONNECT has a password but no username")  # MQTT-3.1.2-22
    client_id = r.string()
    will = Will(r.string(), r.binary(), will_qos, will_retain) if has_will else None
    username = r.string() if has_username else None
    password = r.binary() if has_password else None
    r.expect_end()
    return Connect(
        client_id=client_id,
        clean_session=bool(connect_flags & 0x02),
        keepalive=keepalive,
        username=username,
        password=password,
        will=will,
        protocol_name=protocol_name,
        protocol_level=protocol_level,
    )


def _decode_connack(flags: int, r: _Reader) -> Connack:
    ack_flags, return_code = r.u8(), r.u8()
    if ack_flags & 0xFE:
        raise MqttProtocolError("CONNACK reserved flags are set")
    if return_code > 5:
        raise MqttProtocolError(f"CONNACK return code {return_code} is reserved")
    return Connack(bool(ack_flags & 0x01), return_code)


def _decode_publish(flags: int, r: _Reader) -> Publish:
    dup, qos, retain = bool(flags & 0x08), (flags >> 1) & 0x03, bool(flags & 0x01)
    if qos == 3:
        raise MqttProtocolError("PUBLISH with QoS 3")  # MQTT-3.3.1-4
    if dup and qos == 0:
        raise MqttProtocolError("QoS 0 PUBLISH with DUP set")  # MQTT-3.3.1-2
    topic = r.string()
    if not topic:
        raise MqttProtocolError("PUBLISH with an empty topic")  # MQTT 4.7.3
    if "+" in topic or "#" in topic:
        raise MqttProtocolError("PUBLISH topic contains a wildcard")  # MQTT-3.3.2-2
    packet_id = r.packet_id() if qos else None
    return Publish(topic, r.rest(), qos, retain, dup, packet_id)


def _decode_subscribe(flags: int, r: _Reader) -> Subscribe:
    packet_id = r.packet_id()
    topics = []
    while not r.at_end:
        topic_filter = r.string()
        options = r.u8()
        if options & 0xFC or options == 3:
            raise MqttProtocolError("SUBSCRIBE requested QoS byte is invalid")  # MQTT-3-8.3-4
        topics.append((topic_filter, options))
    if not topics:
        raise MqttProtocolError("SUBSCRIBE without topic filters")  # MQTT-3.8.3-3
    return Subscribe(packet_id, tuple(topics))


def _decode_suback(flags: int, r: _Reader) -> Suback:
    packet_id = r.packet_id()
    codes = tuple(r.rest())
    if not codes or any(c not in (0, 1, 2, SUBACK_FAILURE) for c in codes):
        raise MqttProtocolError("SUBACK return codes are invalid")
    return Suback(packet_id, codes)


def _decode_unsubscribe(flags: int, r: _Reader) -> Unsubscribe:
    packet_id = r.packet_id()
    topics = []
    while not r.at_end:
        topics.append(r.string())
    if not topics:
        raise MqttProtocolError("UNSUBSCRIBE without topic filters")  # MQTT-3.10.3-2
    return Unsubscribe(packet_id, tuple(topics))


def _id_decoder(cls: type) -> Callable[[int, _Reader], Packet]:
    return lambda flags, r: cls(r.packet_id())


def _empty_decoder(cls: type) -> Callable[[int, _Reader], Packet]:
    return lambda flags, r: cls()


_DECODERS: dict[PacketType, Callable[[int, _Reader], Packet]] = {
    PacketType.CONNECT: _decode_connect,
    PacketType.CONNACK: _decode_connack,
    PacketType.PUBLISH: _decode_publish,
    PacketType.PUBACK: _id_decoder(Puback),
    PacketType.PUBREC: _id_decoder(Pubrec),
    PacketType.PUBREL: _id_decoder(Pubrel),
    PacketType.PUBCOMP: _id_decoder(Pubcomp),
    PacketType.SUBSCRIBE: _decode_subscribe,
    PacketType.SUBACK: _decode_suback,
    PacketType.UNSUBSCRIBE: _decode_unsubscribe,
    PacketType.UNSUBACK: _id_decoder(Unsuback),
    PacketType.PINGREQ: _empty_decoder(Pingreq),
    PacketType.PINGRESP: _empty_decoder(Pingresp),
    PacketType.DISCONNECT: _empty_decoder(Disconnect),
}


class Decoder:
    """Incremental stream decoder: `feed(bytes) -> [packets]`.

    `append` + `next_packet` give the same thing one packet at a time, which lets a caller
    stop decoding (e.g. while a CONNECT waits for authentication) without losing bytes.
    After a `MqttProtocolError` the decoder stays failed and re-raises the same error.
    """

    def __init__(self, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        if max_packet_size < 2:
            raise ValueError("max_packet_size must allow at least a fixed header")
        self.max_packet_size = max_packet_size
        self._buffer = bytearray()
        self._error: MqttProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as packets."""
        return len(self._buffer)

    def append(self, data: bytes) -> None:
        if self._error is None:
            self._buffer += data

    def feed(self, data: bytes) -> list[Packet]:
        self.append(data)
        packets = []
        while (packet := self.next_packet()) is not None:
            packets.append(packet)
        return packets

    def next_packet(self) -> Packet | None:
        """The next complete packet, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_packet()
        except MqttProtocolError as exc:
            self._error = exc
            self._buffer = bytearray()
            raise

    def _next_packet(self) -> Packet | None:
        buf = self._buffer
        if not buf:
            return None
        packet_type, flags = buf[0] >> 4, buf[0] & 0x0F
        if packet_type == 0 or packet_type == 15:
            raise MqttProtocolError(f"reserved packet type {packet_type}")
        packet_type = PacketType(packet_type)
        if packet_type is not PacketType.PUBLISH and flags != _REQUIRED_FLAGS[packet_type]:
            raise MqttProtocolError(f"{packet_type.name} has invalid header flags {flags:#06b}")

        remaining, multiplier, pos = 0, 1, 1
        while True:
            if pos > 4:
                raise MqttProtocolError("remaining length is longer than 4 bytes")
            if pos >= len(buf):
                return None
            byte = buf[pos]
            remaining += (byte & 0x7F) * multiplier
            multiplier *= 128
            pos += 1
            if not byte & 0x80:
                break

        expected = _FIXED_LENGTH.get(packet_type)
        if expected is not None and remaining != expected:
            raise MqttProtocolError(f"{packet_type.name} remaining length must be {expected}")
        total = pos + remaining
        if total > self.max_packet_size:
            raise MqttProtocolError(
                f"{packet_type.name} of {total} bytes exceeds the {self.max_packet_size} limit"
            )
        if len(buf) < total:
            return None
        with memoryview(buf) as view:  # one copy of the body, not two
            body = bytes(view[pos:total])
        del buf[:total]
        return _DECODERS[packet_type](flags, _Reader(body, packet_type.name))
