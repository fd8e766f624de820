"""Property tests: valid packets survive any fragmentation; garbage only ever fails cleanly."""

from __future__ import annotations

import itertools
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.localhub.protocols.mqtt.codec import Decoder, encode
from twin_explorer.localhub.protocols.mqtt.connection import ServerConnection
from twin_explorer.localhub.protocols.mqtt.errors import MqttProtocolError
from twin_explorer.localhub.protocols.mqtt.events import (
    NEED_DATA,
    PAUSED,
    ConnectRequested,
    Disconnected,
)
from twin_explorer.localhub.protocols.mqtt.iothub_topics import TopicError, parse_device_publish
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

# MQTT strings: any Unicode except surrogates (not encodable) and U+0000 (forbidden).
text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
topic_names = text.filter(lambda t: t and "+" not in t and "#" not in t)
packet_ids = st.integers(1, 0xFFFF)
qos = st.integers(0, 2)


@st.composite
def publishes(draw):
    level = draw(qos)
    return Publish(
        topic=draw(topic_names),
        payload=draw(st.binary(max_size=300)),
        qos=level,
        retain=draw(st.booleans()),
        dup=draw(st.booleans()) if level else False,
        packet_id=draw(packet_ids) if level else None,
    )


@st.composite
def connects(draw):
    username = draw(st.none() | text)
    return Connect(
        client_id=draw(text),
        clean_session=draw(st.booleans()),
        keepalive=draw(st.integers(0, 0xFFFF)),
        username=username,
        password=draw(st.none() | st.binary(max_size=50)) if username is not None else None,
        will=draw(
            st.none() | st.builds(Will, topic_names, st.binary(max_size=20), qos, st.booleans())
        ),
    )


packets = st.one_of(
    connects(),
    st.builds(Connack, st.booleans(), st.integers(0, 5)),
    publishes(),
    st.builds(Puback, packet_ids),
    st.builds(Pubrec, packet_ids),
    st.builds(Pubrel, packet_ids),
    st.builds(Pubcomp, packet_ids),
    st.builds(Subscribe, packet_ids, st.lists(st.tuples(text, qos), min_size=1).map(tuple)),
    st.builds(
        Suback, packet_ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1).map(tuple)
    ),
    st.builds(Unsubscribe, packet_ids, st.lists(text, min_size=1).map(tuple)),
    st.builds(Unsuback, packet_ids),
    st.just(Pingreq()),
    st.just(Pingresp()),
    st.just(Disconnect()),
)


def _chunks(data, blob: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=30)))
    bounds = [0, *cuts, len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(bounds)]


@given(st.lists(packets, max_size=8), st.data())
def test_valid_packets_round_trip_under_any_fragmentation(sent, data):
    decoder = Decoder()
    received = []
    for chunk in _chunks(data, b"".join(encode(p) for p in sent)):
        received += decoder.feed(chunk)
    assert received == sent
    assert decoder.buffered == 0


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.sampled_from([16, 300, 100_000]), st.data())
def test_garbage_fails_only_with_protocol_errors_and_stays_bounded(blob, limit, data):
    decoder = Decoder(max_packet_size=limit)
    try:
        for chunk in _chunks(data, blob):
            decoder.feed(chunk)
            # Never more than one (incomplete, size-checked) packet is held.
            assert decoder.buffered < max(limit, 5)
    except MqttProtocolError as exc:
        assert exc.reason
        assert decoder.buffered == 0


@settings(max_examples=200)
@given(st.binary(max_size=1500), st.data())
def test_connection_turns_any_bytes_into_events_never_exceptions(blob, data):
    prefix = encode(Connect("dev", clean_session=False, keepalive=10))
    conn = ServerConnection(0.0)
    seen = []
    # b"" means EOF to a connection, so only the final chunk may be empty.
    for chunk in [*(c for c in _chunks(data, prefix + blob) if c), b""]:
        conn.receive_data(chunk, 1.0)
        while True:
            event = conn.next_event()
            seen.append(event)
            if isinstance(event, ConnectRequested):
                conn.accept()
            if event is NEED_DATA or isinstance(event, Disconnected):
                break
            assert event is not PAUSED
            if getattr(event, "needs_ack", False):
                conn.ack(event.packet_id)
        conn.data_to_send()
        if isinstance(seen[-1], Disconnected):
            break
    events = [e for e in seen if e is not NEED_DATA]
    assert isinstance(events[0], ConnectRequested)
    assert isinstance(events[-1], Disconnected)


# Up to 1 MB: a small drawn pattern tiled to a drawn size, so hypothesis explores shapes
# cheaply while the codec sees inputs as large as a hostile client can send.
BIG_SIZES = st.sampled_from([1024, 64 * 1024, 1024 * 1024])
TIME_BOUND = 2.0  # seconds of CPU for 1 MB; linear work takes milliseconds


def _tiled(pattern: bytes, size: int) -> bytes:
    return (pattern * (size // len(pattern) + 1))[:size]


@settings(max_examples=40, deadline=None)
@given(
    st.binary(min_size=1, max_size=64),
    BIG_SIZES,
    st.sampled_from([b"", b"\x30\xff\xff\x7f", b"\x10\xff\xff\xff\x7f", b"\x82\xff\x7f\x00\x01"]),
    st.sampled_from([64 * 1024, 4096, 7]),
)
def test_big_garbage_is_decoded_in_bounded_time(pattern, size, header, chunk):
    blob = header + _tiled(pattern, size)
    decoder = Decoder(max_packet_size=2 * 1024 * 1024)
    start = time.thread_time()
    try:
        for offset in range(0, len(blob), chunk):
            decoder.feed(blob[offset : offset + chunk])
    except MqttProtocolError as exc:
        assert exc.reason
    assert time.thread_time() - start < TIME_BOUND


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["devices/d1/messages/events/", "$iothub/twin/GET/?", "x/", "$iothub/"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00+#"), max_size=8),
    BIG_SIZES,
)
def test_big_publishes_through_a_connection_in_bounded_time(prefix, piece, size):
    repeat = 0xFFF0 // max(1, len(piece.encode("utf-8")))
    topic = (prefix + piece * repeat)[:0x3FFF]
    publish = encode(Publish(topic or "t", b"\x00" * size, 1, packet_id=1))
    conn = ServerConnection(0.0, max_packet_size=2 * 1024 * 1024)
    start = time.thread_time()
    conn.receive_data(encode(Connect("d1", False, 60)), 0.0)
    assert isinstance(conn.next_event(), ConnectRequested)
    conn.accept()
    for offset in range(0, len(publish), 64 * 1024):
        conn.receive_data(publish[offset : offset + 64 * 1024], 0.0)
    event = conn.next_event()
    assert event is not PAUSED
    if not isinstance(event, Disconnected) and event is not NEED_DATA:
        try:
            parse_device_publish(event.topic, event.payload)
        except TopicError as exc:
            assert len(str(exc)) < 2000  # a cut topic: 128 characters, escaped
    assert time.thread_time() - start < TIME_BOUND
