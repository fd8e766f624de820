"""No AMQP input costs the hub's loop more than linear work: time per byte stays flat from
1 KB to 1 MB, however the bytes are chunked and however many frames carry them."""

from __future__ import annotations

from tests.linear import KB, MB, assert_linear
from twin_explorer.localhub.protocols.amqp import (
    Attach,
    Begin,
    Data,
    Flow,
    LinkAttachRequested,
    Message,
    MessageReceived,
    Open,
    ServerConnection,
    Source,
    Target,
    Transfer,
    decode,
    decode_message,
    encode,
    encode_message,
)

from .peer import AMQP, frame

READ_CHUNK = 64 * KB
FRAME = 16 * KB
PRELUDE = (AMQP + frame(0, Open(container_id="c")) +
           frame(0, Begin(next_outgoing_id=0, incoming_window=0xFFFFFFFF,
                          outgoing_window=0xFFFFFFFF)) +
           frame(0, Attach(name="s", handle=0, role=False, source=Source(),
                           target=Target(address="/devices/d1/messages/events"),
                           initial_delivery_count=0)))


def _connection() -> ServerConnection:
    conn = ServerConnection(max_message_size=4 * MB, max_reassembly_bytes=4 * MB,
                            incoming_window=0xFFFFFFF)
    (event,) = conn.receive_data(PRELUDE)[-1:]
    assert isinstance(event, LinkAttachRequested)
    conn.accept_link(event.link)
    conn.grant_credit(event.link, 1_000_000)
    conn.data_to_send()
    return conn


def _multi_frame_message(n: int) -> bytes:
    """One n-byte message split into 16 KB transfer frames, the way clients send it."""
    payload = encode_message(Message(body=[Data(b"x" * n)]))
    frames = []
    for index, start in enumerate(range(0, len(payload), FRAME)):
        chunk = payload[start:start + FRAME]
        first = index == 0
        frames.append(frame(0, Transfer(handle=0, delivery_id=0 if first else None,
                                        delivery_tag=b"t" if first else None,
                                        more=start + FRAME < len(payload)), chunk))
    return b"".join(frames)


def _feed(chunk_size: int):
    def run(data: bytes) -> None:
        conn = _connection()
        got = []
        for start in range(0, len(data), chunk_size):
            got += conn.receive_data(data[start:start + chunk_size])
        assert isinstance(got[-1], MessageReceived), got[-1:]
    return run


def test_a_multi_frame_message_costs_the_same_per_byte_up_to_1_mb() -> None:
    assert_linear(_feed(READ_CHUNK), _multi_frame_message, what="reassembling a message")


def test_a_message_fed_in_small_slices_costs_the_same_per_byte() -> None:
    assert_linear(_feed(512), _multi_frame_message, what="reassembling from 512-byte reads")


def test_many_small_frames_cost_the_same_per_byte() -> None:
    flow = frame(0, Flow(next_incoming_id=0, incoming_window=10, next_outgoing_id=0,
                         outgoing_window=10))

    def run(data: bytes) -> None:
        conn = _connection()
        for start in range(0, len(data), READ_CHUNK):
            conn.receive_data(data[start:start + READ_CHUNK])
        assert not conn.closed

    assert_linear(run, lambda n: flow * (n // len(flow)), what="session flows")


def test_decoding_big_values_costs_the_same_per_byte() -> None:
    assert_linear(decode, lambda n: encode(b"x" * n), what="a binary")
    assert_linear(decode, lambda n: encode(["a" * 10] * (n // 12)), what="a list of strings")
    assert_linear(decode, lambda n: encode({f"k{i}": i for i in range(n // 16)}), what="a map")
    assert_linear(decode_message,
                  lambda n: encode_message(Message(body=[Data(b"x" * 100)] * (n // 103))),
                  what="many data sections")


def test_sending_a_big_message_in_small_frames_costs_the_same_per_byte() -> None:
    def run(message: Message) -> None:
        conn = ServerConnection(max_message_size=4 * MB)
        events = conn.receive_data(
            AMQP + frame(0, Open(container_id="c", max_frame_size=4096))
            + frame(0, Begin(next_outgoing_id=0, incoming_window=0xFFFFFFFF,
                             outgoing_window=0xFFFFFFFF))
            + frame(0, Attach(name="r", handle=0, role=True, source=Source(address="/x"),
                              target=Target()))
            + frame(0, Flow(next_incoming_id=0, incoming_window=0xFFFFFFFF, next_outgoing_id=0,
                            outgoing_window=0xFFFFFFFF, handle=0, delivery_count=0,
                            link_credit=10)))
        link = events[2].link
        conn.accept_link(link)
        assert conn.send(link, message, settled=True) is not None
        assert conn.pending_output_bytes > len(message.data)

    assert_linear(run, lambda n: Message(body=[Data(b"x" * n)]), what="splitting a message")
