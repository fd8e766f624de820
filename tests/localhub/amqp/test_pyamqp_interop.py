"""Our frames read by azure-eventhub's own AMQP decoder (`_pyamqp`, 5.15.1), the way its
client reads them: it builds each performative positionally (`OpenFrame(*fields)`), indexes
fields (`frame[13]`, `Source(*frame[5])`) and fails on any list written short (gotcha 1).
This is the client's code, run on our bytes; no socket needed."""

from __future__ import annotations

import uuid

from azure.eventhub._pyamqp import performatives as py
from azure.eventhub._pyamqp._decode import decode_frame, decode_payload
from azure.eventhub._pyamqp.endpoints import Source as PySource
from azure.eventhub._pyamqp.endpoints import Target as PyTarget

from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    Attach,
    Begin,
    Close,
    Data,
    Described,
    Detach,
    End,
    Error,
    Flow,
    Int,
    Long,
    Message,
    Open,
    Properties,
    SaslInit,
    Source,
    Symbol,
    Target,
    Timestamp,
    Transfer,
    Value,
    encode_message,
    errors,
)

from .peer import AMQP, SASL, Peer, frame

FRAMES = {0x10: py.OpenFrame, 0x11: py.BeginFrame, 0x12: py.AttachFrame, 0x13: py.FlowFrame,
          0x14: py.TransferFrame, 0x15: py.DispositionFrame, 0x16: py.DetachFrame,
          0x17: py.EndFrame, 0x18: py.CloseFrame, 0x40: py.SASLMechanism, 0x44: py.SASLOutcome}


def as_pyamqp(wire: bytes) -> list[tuple[int, object]]:
    """Split our output into frames and build each the way `_pyamqp` does on receipt."""
    built = []
    pos = 0
    while pos < len(wire):
        if wire[pos:pos + 4] == b"AMQP":
            pos += 8
            continue
        size = int.from_bytes(wire[pos:pos + 4], "big")
        body = memoryview(wire[pos + 8:pos + size])
        pos += size
        if not body:
            continue
        code, fields = decode_frame(body)
        built.append((code, FRAMES[code](*fields)))  # TypeError if a field is missing
    return built


def test_a_consumer_conversation_reads_cleanly_in_pyamqp():
    peer = Peer()
    peer.feed(SASL, frame(0, SaslInit(Symbol("ANONYMOUS"), b"", "localhost"), sasl=True,
                          short=False))
    peer.conn.sasl_outcome(True)
    peer.feed(AMQP, frame(0, Open(container_id="cd764b62", hostname="localhost",
                                  max_frame_size=1048576, channel_max=65535), short=False),
              frame(1, Begin(next_outgoing_id=0, incoming_window=65536,
                             outgoing_window=65536), short=False))
    cbs_receiver, cbs_sender = (e.link for e in peer.feed(
        frame(1, Attach(name="cbs-r", handle=2, role=True, snd_settle_mode=0,
                        rcv_settle_mode=0, source=Source(address="$cbs"),
                        target=Target(address="$cbs")), short=False),
        frame(1, Attach(name="cbs-s", handle=1, role=False, snd_settle_mode=0,
                        rcv_settle_mode=0, source=Source(address="$cbs"),
                        target=Target(address="$cbs"), initial_delivery_count=0),
              short=False)))
    peer.conn.accept_link(cbs_receiver)
    peer.conn.accept_link(cbs_sender)
    peer.conn.grant_credit(cbs_sender, 100)
    peer.feed(frame(1, Flow(next_incoming_id=0, incoming_window=65536, next_outgoing_id=0,
                            outgoing_window=65536, handle=2, delivery_count=0,
                            link_credit=10000), short=False))
    request_id = uuid.uuid4()
    (put,) = peer.feed(frame(1, Transfer(handle=1, delivery_id=0, delivery_tag=b"\x00\x00\x00\x01",
                                         message_format=0, settled=False),
                             encode_message(Message(
                                 properties=Properties(message_id=request_id),
                                 application_properties={"operation": "put-token"},
                                 body=Value("SharedAccessSignature sr=x"))), short=False))
    peer.conn.settle(cbs_sender, put.delivery_id, Accepted())
    peer.conn.send(cbs_receiver, Message(
        properties=Properties(correlation_id=put.message.properties.message_id),
        application_properties={"status-code": Int(200), "status-description": "OK"}),
        settled=True)

    selector = Symbol("apache.org:selector-filter:string")
    offset_filter = Described(selector, "amqp.annotation.x-opt-offset > '-1'")
    (consumer,) = (e.link for e in peer.feed(frame(1, Attach(
        name="2b8245ca", handle=3, role=True, snd_settle_mode=0, rcv_settle_mode=0,
        source=Source(address="amqps://localhost/myhub/ConsumerGroups/$Default/Partitions/0",
                      filter={selector: offset_filter}),
        target=Target(address="receiver-link-2b8245ca"), max_message_size=1048576),
        short=False)))
    peer.conn.accept_link(consumer)
    peer.feed(frame(1, Flow(next_incoming_id=1, incoming_window=65535, next_outgoing_id=1,
                            outgoing_window=65535, handle=3, delivery_count=0,
                            link_credit=300), short=False))
    event = Message(message_annotations={Symbol("x-opt-sequence-number"): Long(0),
                                         Symbol("x-opt-offset"): "0",
                                         Symbol("x-opt-enqueued-time"): Timestamp(1796538111000)},
                    body=[Data(b'{"temp":20}')])
    peer.conn.send(consumer, event, settled=True)
    peer.conn.detach(consumer, Error(errors.LINK_DETACH_FORCED, "partition moved"))
    peer.feed(frame(1, Detach(handle=3, closed=True), short=False),
              frame(1, End(), short=False), frame(0, Close(), short=False))
    peer.output()

    built = as_pyamqp(bytes(peer.wire))
    kinds = [code for code, _ in built]
    assert kinds == [0x40, 0x44, 0x10, 0x11, 0x12, 0x12, 0x13, 0x15, 0x14, 0x12, 0x14, 0x16,
                     0x17, 0x18]
    by_kind = {}
    for code, value in built:
        by_kind.setdefault(code, []).append(value)
    mechanisms = by_kind[0x40][0].sasl_server_mechanisms
    assert b"ANONYMOUS" in mechanisms and b"MSSBCBS" in mechanisms
    open_ = by_kind[0x10][0]
    assert open_.max_frame_size >= 512 and open_.idle_timeout == 240000  # _connection.py:440
    assert by_kind[0x11][0].remote_channel == 1
    for attach in by_kind[0x12]:
        assert attach.source is not None and attach.target is not None  # link.py:173-176
        PySource(*attach.source)
        PyTarget(*attach.target)
        if attach.role is False:  # we send: receiver.py:49 needs a count
            assert attach.initial_delivery_count == 0
    consumer_attach = by_kind[0x12][2]
    source = PySource(*consumer_attach.source)
    # pyamqp reads a described value as its value alone.
    assert source.filters[selector.encode()] == b"amqp.annotation.x-opt-offset > '-1'"
    reply, delivered = (decode_payload(memoryview(t.payload)) for t in by_kind[0x14])
    assert reply.properties.correlation_id == request_id  # management_link.py:140-150
    assert reply.application_properties[b"status-code"] == 200
    assert delivered.message_annotations[b"x-opt-sequence-number"] == 0
    assert delivered.message_annotations[b"x-opt-offset"] == b"0"
    assert delivered.data == [b'{"temp":20}']
    detach = by_kind[0x16][0]
    assert detach.closed and detach.error[0] == b"amqp:link:detach-forced"
    assert isinstance(by_kind[0x15][0], py.DispositionFrame)
