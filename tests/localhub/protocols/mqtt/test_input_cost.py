"""No MQTT input costs the hub's loop more than linear work: time per byte is flat from
1 KB to the largest size each field can have (64 KB for MQTT strings, 1 MB for a payload)."""

from __future__ import annotations

import pytest

from tests.linear import KB, MB, SIZES, assert_linear
from twin_explorer.localhub.protocols.mqtt.codec import Decoder, encode
from twin_explorer.localhub.protocols.mqtt.connection import ServerConnection
from twin_explorer.localhub.protocols.mqtt.events import ConnectRequested, Disconnected, Published
from twin_explorer.localhub.protocols.mqtt.iothub_topics import TopicError, parse_device_publish
from twin_explorer.localhub.protocols.mqtt.packets import Connect, Publish, Subscribe

READ_CHUNK = 64 * KB  # what a DeviceLink reads at once
STRING_SIZES = (KB, 4 * KB, 16 * KB, 0xFFFF)  # an MQTT string holds at most 64 KB


def _decode(data: bytes) -> None:
    decoder = Decoder(max_packet_size=2 * MB)
    for start in range(0, len(data), READ_CHUNK):
        decoder.feed(data[start : start + READ_CHUNK])


def _connect(client_id: str = "d1", username: str = "u", password: bytes = b"p") -> bytes:
    return encode(Connect(client_id, False, 60, username, password))


@pytest.mark.parametrize(
    "field",
    [
        lambda n: _connect(client_id="c" * n),
        lambda n: _connect(username="h/d1/?api-version=x&" + "u" * n),
        lambda n: _connect(password=b"SharedAccessSignature sr=" + b"p" * n),
        lambda n: encode(Subscribe(1, (("$iothub/" + "t" * n, 1),))),
    ],
    ids=["client id", "username", "password", "topic filter"],
)
def test_decoding_a_string_field_costs_the_same_per_byte_up_to_64_kb(field) -> None:
    sizes = tuple(n - 64 for n in STRING_SIZES)  # room for the fixed parts of the field
    assert_linear(_decode, lambda n: field(n), sizes, what="decoding")


def test_decoding_a_payload_costs_the_same_per_byte_up_to_1_mb() -> None:
    assert_linear(
        _decode,
        lambda n: encode(Publish("devices/d1/messages/events/", b"x" * n, 1, packet_id=1)),
        what="decoding a PUBLISH",
    )


def test_a_payload_fed_in_small_slices_costs_the_same_per_byte() -> None:
    def feed_slowly(data: bytes) -> None:
        decoder = Decoder(max_packet_size=2 * MB)
        for start in range(0, len(data), 512):
            decoder.feed(data[start : start + 512])

    assert_linear(
        feed_slowly,
        lambda n: encode(Publish("devices/d1/messages/events/", b"x" * n, 0)),
        what="decoding a PUBLISH in 512-byte slices",
    )


def _serve(publish: bytes) -> None:
    """CONNECT, accept and one PUBLISH through the state machine, then IoT Hub's parser."""
    conn = ServerConnection(0.0, max_packet_size=2 * MB)
    conn.receive_data(_connect(), 0.0)
    assert isinstance(conn.next_event(), ConnectRequested)
    conn.accept()
    for start in range(0, len(publish), READ_CHUNK):
        conn.receive_data(publish[start : start + READ_CHUNK], 0.0)
    event = conn.next_event()
    if isinstance(event, Disconnected):
        return
    assert isinstance(event, Published)
    try:
        parse_device_publish(event.topic, event.payload)
    except TopicError as exc:
        assert len(str(exc)) < 2000  # the close reason quotes a cut topic only


@pytest.mark.parametrize(
    "topic",
    [
        lambda n: "devices/d1/messages/events/" + "k=v&" * (n // 4),
        lambda n: "devices/d1/messages/events/" + "%" * n,
        lambda n: "devices/" + "d" * n,
        lambda n: "$iothub/twin/GET/?" + "$rid=1&" * (n // 7),
        lambda n: "$iothub/methods/res/" + "2" * n,
        lambda n: "unknown/" + "/" * n,
    ],
    ids=["property bag", "percent signs", "long device", "query", "status", "unknown"],
)
def test_a_topic_costs_the_same_per_byte_up_to_64_kb(topic) -> None:
    sizes = tuple(n - 64 for n in STRING_SIZES)
    assert_linear(
        _serve,
        lambda n: encode(Publish(topic(n), b"{}", 1, packet_id=1)),
        sizes,
        what="serving a PUBLISH",
    )


def test_a_payload_through_the_connection_costs_the_same_per_byte_up_to_1_mb() -> None:
    assert_linear(
        _serve,
        lambda n: encode(
            Publish("$iothub/twin/PATCH/properties/reported/?$rid=1", b"7" * n, 1, packet_id=1)
        ),
        SIZES,
        what="serving a PUBLISH",
    )
