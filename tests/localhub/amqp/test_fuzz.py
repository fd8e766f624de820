"""Property tests: every value round-trips with its type; any bytes after a valid header end
in events or ConnectionClosed, never an exception, never a hang."""

from __future__ import annotations

import contextlib
import random
import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    AmqpDecodeError,
    Array,
    Attach,
    Begin,
    Byte,
    Close,
    ConnectionClosed,
    CreditChanged,
    Data,
    Described,
    Detach,
    Disposition,
    End,
    Error,
    Float,
    Flow,
    Int,
    LinkAttachRequested,
    Long,
    Message,
    MessageReceived,
    Open,
    Properties,
    Rejected,
    Released,
    SaslInit,
    SaslInitReceived,
    ServerConnection,
    Short,
    Source,
    Symbol,
    Target,
    Timestamp,
    Transfer,
    UByte,
    UInt,
    ULong,
    UShort,
    decode,
    decode_message,
    encode,
    encode_message,
    errors,
)

from .peer import AMQP, SASL, frame, parse

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
symbols = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(Symbol)
scalars = st.one_of(
    st.none(), st.booleans(), text, symbols, st.binary(max_size=40),
    st.integers(0, 0xFF).map(UByte), st.integers(0, 0xFFFF).map(UShort),
    st.integers(0, 0xFFFFFFFF).map(UInt), st.integers(0, 2**64 - 1).map(ULong),
    st.integers(-128, 127).map(Byte), st.integers(-(2**15), 2**15 - 1).map(Short),
    st.integers(-(2**31), 2**31 - 1).map(Int), st.integers(-(2**63), 2**63 - 1).map(Long),
    st.integers(-(2**63), 2**63 - 1).map(Timestamp), st.uuids(),
    st.floats(allow_nan=False), st.floats(allow_nan=False, width=32).map(Float),
)
hashable = st.one_of(text, symbols, st.binary(max_size=10), st.integers(0, 2**32 - 1).map(UInt))
arrays = st.one_of(
    st.lists(symbols, max_size=5).map(lambda xs: Array(0xA3, xs)),
    st.lists(st.integers(0, 0xFFFFFFFF).map(UInt), max_size=5).map(lambda xs: Array(0x70, xs)),
)
values = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(hashable, inner, max_size=4),
        st.builds(Described, symbols, inner),
    ),
    max_leaves=20,
)


def same(a, b) -> bool:
    """Equal and of the same type all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(map(type, a)) == list(map(type, b)) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Described):
        return same(a.descriptor, b.descriptor) and same(a.value, b.value)
    if isinstance(a, Array):
        return a == b
    return a == b


@given(values)
def test_any_value_round_trips_with_its_types(value):
    assert same(decode(encode(value)), value)


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_garbage_values_fail_only_with_decode_errors(blob):
    for decoder in (decode, decode_message):
        with contextlib.suppress(AmqpDecodeError):
            decoder(blob)


@given(st.builds(Message,
                 message_annotations=st.none() | st.dictionaries(symbols, scalars, max_size=3),
                 properties=st.none() | st.builds(Properties, message_id=st.none() | text
                                                  | st.uuids() | st.integers(0, 9).map(ULong),
                                                  correlation_id=st.none() | st.uuids()),
                 application_properties=st.none() | st.dictionaries(text, scalars, max_size=3),
                 body=st.lists(st.binary(max_size=30).map(Data), max_size=3)))
def test_any_message_round_trips(message):
    assert decode_message(encode_message(message)) == message


# ---------------------------------------------------------------- engine under fire


class Hub:
    """A transport making every decision the API offers, at random, and checking that all
    the engine writes parses back into whole frames."""

    def __init__(self, conn: ServerConnection, rng: random.Random | None = None) -> None:
        self.conn = conn
        self.rng = rng or random.Random(0)
        self.closed = False
        self.links: list = []

    def handle(self, events) -> None:
        rng = self.rng
        for event in events:
            assert not self.closed, "events after ConnectionClosed"
            if isinstance(event, SaslInitReceived):
                self.handle(self.conn.sasl_outcome(rng.random() < 0.9))
            elif isinstance(event, LinkAttachRequested):
                if rng.random() < 0.8:
                    self.conn.accept_link(event.link, max_message_size=rng.choice([None, 64]))
                    self.conn.grant_credit(event.link, rng.randrange(6))
                    self.links.append(event.link)
                else:
                    self.conn.refuse_link(event.link, Error(errors.NOT_FOUND, "no"))
            elif isinstance(event, MessageReceived):
                outcome = rng.choice([Accepted(), Released(), Rejected(Error(errors.NOT_FOUND))])
                self.conn.settle(event.link, event.delivery_id, outcome,
                                 settled=rng.random() < 0.8)
            elif isinstance(event, CreditChanged):
                self.conn.send(event.link, Message(body=[Data(b"x" * 700)]),
                               settled=rng.random() < 0.5)
                if event.drain:
                    self.conn.complete_drain(event.link)
            elif isinstance(event, ConnectionClosed):
                self.closed = True
        if self.links and rng.random() < 0.05:
            self.conn.detach(rng.choice(self.links), None, closed=rng.random() < 0.5)
        if rng.random() < 0.01:
            self.conn.close(Error(errors.CONNECTION_FORCED, "stop"))
        assert self.conn.pending_output_bytes >= 0
        parse(self.conn.data_to_send())  # whole frames that decode, or it raises


def drive(prefix: bytes, blob: bytes, cuts: list[int], conn: ServerConnection,
          rng: random.Random | None = None) -> Hub:
    hub = Hub(conn, rng)
    data = prefix + blob
    start = time.monotonic()
    points = sorted({c % (len(data) + 1) for c in cuts} | {len(data)})
    last = 0
    for point in points:
        hub.handle(conn.receive_data(data[last:point]))
        last = point
    hub.handle(conn.tick(1e9))  # and time passing never breaks it either
    assert time.monotonic() - start < 2.0
    return hub


prefixes = st.sampled_from([
    AMQP,
    AMQP + frame(0, Open(container_id="c", max_frame_size=512)),
    AMQP + frame(0, Open(container_id="c")) + frame(0, Begin(next_outgoing_id=0,
                                                             incoming_window=3,
                                                             outgoing_window=9)),
    SASL + frame(0, SaslInit(Symbol("ANONYMOUS"), b""), sasl=True) + AMQP,
])


@settings(max_examples=300, deadline=2000)
@given(prefixes, st.binary(max_size=1500), st.lists(st.integers(0, 4000), max_size=6),
       st.randoms(use_true_random=False))
def test_any_bytes_after_a_valid_header_end_in_events(prefix, blob, cuts, rng):
    drive(prefix, blob, cuts, ServerConnection(), rng)


handles = st.integers(0, 4).map(UInt)
small = st.integers(0, 6).map(UInt)
channels = st.integers(0, 2)
terminus = st.none() | st.builds(Source, address=st.none() | text) | st.builds(Target)
performatives = st.one_of(
    st.builds(Begin, remote_channel=st.none() | st.integers(0, 2).map(UShort),
              next_outgoing_id=small, incoming_window=small, outgoing_window=small),
    st.builds(Attach, name=text, handle=handles, role=st.booleans(), source=terminus,
              target=terminus, initial_delivery_count=st.none() | small,
              max_message_size=st.none() | st.integers(0, 2000).map(ULong)),
    st.builds(Flow, next_incoming_id=st.none() | small, incoming_window=small,
              next_outgoing_id=small, outgoing_window=small, handle=st.none() | handles,
              delivery_count=st.none() | small, link_credit=st.none() | small,
              drain=st.booleans(), echo=st.booleans()),
    st.builds(Transfer, handle=handles, delivery_id=st.none() | small,
              delivery_tag=st.none() | st.binary(max_size=4), settled=st.none() | st.booleans(),
              more=st.booleans(), aborted=st.booleans()),
    st.builds(Disposition, role=st.booleans(), first=small, last=st.none() | small,
              settled=st.booleans(), state=st.sampled_from([None, Accepted(), Released()])),
    st.builds(Detach, handle=handles, closed=st.booleans()),
    st.builds(End),
    st.builds(Close),
    st.builds(Open, container_id=text),
)
payloads = st.sampled_from([b"", encode_message(Message(body=[Data(b"m")])), b"\x00\x53",
                            b"\x00\x53\x75\xa0\x03abc"])


@settings(max_examples=300, deadline=2000)
@given(st.lists(st.tuples(channels, performatives, payloads, st.booleans()), max_size=25),
       st.lists(st.integers(0, 4000), max_size=4), st.randoms(use_true_random=False))
def test_any_sequence_of_well_formed_frames_ends_in_events(frames, cuts, rng):
    blob = b"".join(frame(ch, p, payload if isinstance(p, Transfer) else b"", short=short)
                    for ch, p, payload, short in frames)
    drive(AMQP + frame(0, Open(container_id="c", max_frame_size=600)), blob, cuts,
          ServerConnection(max_links=6, max_unsettled=3, channel_max=1), rng)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=8), st.integers(10_000, 300_000))
def test_big_garbage_is_handled_in_bounded_time(pattern, size):
    blob = (pattern * (size // len(pattern) + 1))[:size]
    start = time.monotonic()
    drive(AMQP + frame(0, Open(container_id="c")), blob, [], ServerConnection())
    assert time.monotonic() - start < 2.0


def test_uuid_ids_survive_a_fuzzed_neighbourhood():
    # A regression guard for the type rules the fuzzers rely on: uuid stays uuid.
    value = {Symbol("id"): uuid.UUID(int=5)}
    assert same(decode(encode(value)), value)
