"""Encoding and decoding of every MQTT 3.1.1 packet, plus the malformed inputs we must refuse."""

from __future__ import annotations

import struct

import pytest

from twin_explorer.localhub.protocols.mqtt.codec import (
    DEFAULT_MAX_PACKET_SIZE,
    Decoder,
    encode,
    encode_remaining_length,
)
from twin_explorer.localhub.protocols.mqtt.errors import LocalProtocolError, MqttProtocolError
from twin_explorer.localhub.protocols.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
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

USERNAME = (
    "localhost/d1/m1/?api-version=2019-10-01&DeviceClientType=azure-iot-device-iothub-py%2F"
    "2.14.0%283.11.7%3BLinux%20%231%20SMP%20PREEMPT_DYNAMIC%20%400%3Bx86_64%29myprod%2F1.0"
)
PASSWORD = (
    b"SharedAccessSignature sr=localhost%2Fdevices%2Fd1%2Fmodules%2Fm1"
    b"&sig=R3W0abcdefghijklmnopqrstuvwxyz0123456789tY%3D&se=1795346403"
)

ALL_PACKETS = [
    Connect("d1/m1", clean_session=False, keepalive=30, username=USERNAME, password=PASSWORD),
    Connect("d1", clean_session=False, keepalive=60, username="localhost/d1/?api-version=x"),
    Connect("", clean_session=True, keepalive=0),
    Connect("c", will=Will("devices/c/messages/events/", b"bye", 1, True), username="u"),
    Connect("c", protocol_name="MQIsdp", protocol_level=3),
    Connack(False, 0),
    Connack(True, 0),
    Connack(False, 5),
    Publish("$iothub/twin/GET/?$rid=1", b" ", qos=1, packet_id=1),
    Publish("a/b", b"", qos=0),
    Publish("a/b", b"\x00\xff" * 10, qos=1, retain=True, dup=True, packet_id=65535),
    Publish("a", b"x", qos=2, packet_id=7),
    Puback(1),
    Pubrec(2),
    Pubrel(3),
    Pubcomp(4),
    Subscribe(10, (("$iothub/twin/res/#", 1),)),
    Subscribe(11, (("a/+/c", 0), ("#", 2))),
    Suback(10, (1,)),
    Suback(11, (0, 0x80, 2)),
    Unsubscribe(12, ("a/b", "$iothub/methods/POST/#")),
    Unsuback(12),
    Pingreq(),
    Pingresp(),
    Disconnect(),
]


def sdk_connect_bytes() -> bytes:
    """The SDK's CONNECT (reference A.2, A.16) built by hand, byte for byte."""

    def field(data: bytes) -> bytes:
        return struct.pack("!H", len(data)) + data

    variable = field(b"MQTT") + bytes([4, 0xC0]) + struct.pack("!H", 30)
    payload = field(b"d1/m1") + field(USERNAME.encode()) + field(PASSWORD)
    body = variable + payload
    return bytes([0x10]) + encode_remaining_length(len(body)) + body


@pytest.mark.parametrize("packet", ALL_PACKETS, ids=lambda p: type(p).__name__)
def test_every_packet_round_trips(packet):
    data = encode(packet)
    assert Decoder().feed(data) == [packet]


def test_sdk_connect_decodes_exactly():
    data = sdk_connect_bytes()
    assert data[0] == 0x10
    (packet,) = Decoder().feed(data)
    assert packet == Connect(
        client_id="d1/m1",
        clean_session=False,
        keepalive=30,
        username=USERNAME,
        password=PASSWORD,
        will=None,
    )
    # Our encoder produces the very same bytes, so flags 0xC0 come out as the SDK sends them.
    assert encode(packet) == data


def test_fixed_headers_match_the_spec():
    assert encode(Pingreq()) == b"\xc0\x00"
    assert encode(Pingresp()) == b"\xd0\x00"
    assert encode(Disconnect()) == b"\xe0\x00"
    assert encode(Connack(True, 0)) == b"\x20\x02\x01\x00"
    assert encode(Puback(258)) == b"\x40\x02\x01\x02"
    assert encode(Pubrel(1)) == b"\x62\x02\x00\x01"
    assert encode(Suback(1, (1, 0x80))) == b"\x90\x04\x00\x01\x01\x80"
    assert encode(Subscribe(1, (("a", 1),)))[0] == 0x82
    assert encode(Unsubscribe(1, ("a",)))[0] == 0xA2
    assert encode(Publish("t", b"p", 1, retain=True, dup=True, packet_id=1))[0] == 0x3B


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_varint(length, encoded):
    assert encode_remaining_length(length) == encoded


def test_stream_whole_and_byte_by_byte_agree():
    stream = b"".join(encode(p) for p in ALL_PACKETS) + sdk_connect_bytes()
    whole = Decoder().feed(stream)
    decoder = Decoder()
    one_by_one = []
    for i in range(len(stream)):
        one_by_one += decoder.feed(stream[i : i + 1])
    assert whole == one_by_one == [*ALL_PACKETS, Decoder().feed(sdk_connect_bytes())[0]]
    assert decoder.buffered == 0


def test_truncated_packets_wait_for_more_data():
    for packet in ALL_PACKETS:
        data = encode(packet)
        for cut in range(len(data)):
            decoder = Decoder()
            assert decoder.feed(data[:cut]) == []
            assert decoder.feed(data[cut:]) == [packet]


def test_oversize_packet_is_refused_from_its_header_alone():
    decoder = Decoder(max_packet_size=1000)
    header = bytes([0x30]) + encode_remaining_length(1000)  # total 1003 bytes
    with pytest.raises(MqttProtocolError, match="exceeds"):
        decoder.feed(header)
    # A failed decoder holds nothing and keeps failing.
    assert decoder.buffered == 0
    with pytest.raises(MqttProtocolError):
        decoder.feed(b"\xc0\x00")


def test_default_limit_takes_a_full_size_message_with_a_long_topic():
    topic = "devices/d1/messages/events/" + "k=v&" * 16_000
    packet = Publish(topic, b"x" * (256 * 1024), 1, packet_id=1)
    data = encode(packet)
    assert len(data) <= DEFAULT_MAX_PACKET_SIZE
    assert Decoder().feed(data) == [packet]
    with pytest.raises(MqttProtocolError):
        Decoder().feed(bytes([0x30]) + encode_remaining_length(DEFAULT_MAX_PACKET_SIZE))


def test_fifth_length_byte_is_an_error_before_it_arrives():
    with pytest.raises(MqttProtocolError, match="4 bytes"):
        Decoder().feed(b"\x30\xff\xff\xff\xff")
    # Four continuation bytes are already hopeless.
    with pytest.raises(MqttProtocolError, match="4 bytes"):
        Decoder().feed(b"\x30\x80\x80\x80\x80")


def _connect_body(flags: int, payload: bytes) -> bytes:
    return b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c" + payload


def _frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_remaining_length(len(body)) + body


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x00", "reserved packet type 0"),
        (b"\xf0\x00", "reserved packet type 15"),
        (b"\xc1\x00", "invalid header flags"),  # PINGREQ with a flag
        (b"\x60\x02\x00\x01", "invalid header flags"),  # PUBREL must carry 0b0010
        (b"\x80\x06\x00\x01\x00\x01a\x01", "invalid header flags"),  # SUBSCRIBE without 0b0010
        (b"\xc0\x01\x00", "remaining length must be 0"),
        (b"\x40\x03\x00\x01\x00", "remaining length must be 2"),
        (b"\x40\x02\x00\x00", "packet id 0"),
        (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
        (b"\x38\x03\x00\x01a", "DUP set"),
        (b"\x30\x03\x00\x01+", "wildcard"),
        (b"\x30\x04\x00\x02a#", "wildcard"),
        (b"\x30\x02\x00\x00", "empty topic"),
        (b"\x32\x05\x00\x01a\x00\x00", "packet id 0"),
        (b"\x30\x04\x00\x02a\x00", r"U\+0000"),
        (b"\x30\x04\x00\x02\xc3\x28", "invalid UTF-8"),
        (b"\x30\x05\x00\x03\xed\xa0\x80", "invalid UTF-8"),  # an encoded surrogate
        (b"\x30\x04\x00\x05ab", "truncated"),
        (b"\x82\x02\x00\x01", "without topic filters"),
        (b"\x82\x06\x00\x01\x00\x01a\x03", "QoS byte"),
        (b"\x82\x06\x00\x01\x00\x01a\x81", "QoS byte"),
        (b"\xa2\x02\x00\x01", "without topic filters"),
        (b"\x90\x03\x00\x01\x03", "return codes"),
        (b"\x20\x02\x02\x00", "reserved flags"),
        (b"\x20\x02\x00\x06", "reserved"),
        (_frame(0x10, b"\x00\x04MQTT\x05\x02\x00\x3c"), "protocol level 5"),
        (_frame(0x10, _connect_body(0x03, b"\x00\x01c")), "reserved flag"),
        (_frame(0x10, _connect_body(0x40, b"\x00\x01c\x00\x01p")), "password but no username"),
        (_frame(0x10, _connect_body(0x08, b"\x00\x01c")), "without a will"),
        (_frame(0x10, _connect_body(0x20, b"\x00\x01c")), "without a will"),
        (_frame(0x10, _connect_body(0x1C, b"\x00\x01c\x00\x01t\x00\x00")), "will QoS is 3"),
        (_frame(0x10, _connect_body(0x02, b"\x00\x01c!")), "extra bytes"),
        (_frame(0x10, _connect_body(0x80, b"\x00\x01c")), "truncated"),
    ],
)
def test_malformed_input_is_a_protocol_error(data, reason):
    with pytest.raises(MqttProtocolError, match=reason):
        Decoder().feed(data)


def test_error_reason_is_exposed():
    with pytest.raises(MqttProtocolError) as info:
        Decoder().feed(b"\x00\x00")
    assert info.value.reason == "reserved packet type 0"


def test_bytes_before_an_error_still_decode_one_at_a_time():
    decoder = Decoder()
    decoder.append(encode(Pingreq()) + b"\xf0\x00")
    assert decoder.next_packet() == Pingreq()
    with pytest.raises(MqttProtocolError):
        decoder.next_packet()


@pytest.mark.parametrize(
    "packet",
    [
        Publish("a/+", b""),
        Publish("", b""),
        Publish("a", b"", qos=1),  # no packet id
        Publish("a", b"", qos=0, packet_id=3),
        Publish("a", b"", qos=0, dup=True),
        Publish("a", b"", qos=3, packet_id=1),
        Publish("a\x00b", b""),
        Publish("\ud800", b""),
        Puback(0),
        Puback(70_000),
        Connack(False, 6),
        Connect("c", password=b"p"),
        Connect("c", keepalive=70_000),
        Subscribe(1, ()),
        Suback(1, (3,)),
        Unsubscribe(1, ()),
        Connect("x" * 70_000),
        "not a packet",
    ],
)
def test_encoding_an_impossible_packet_is_a_local_error(packet):
    with pytest.raises(LocalProtocolError):
        encode(packet)
