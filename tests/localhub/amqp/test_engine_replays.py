"""The three observed clients (reference F.1-F.3) replayed frame by frame through the engine.

Client frames are written the way each client writes them: rhea (Node) and uamqp drop
trailing nulls and send list0 END/CLOSE, azure-eventhub writes every field. Every server
frame must decode, carry full-length performatives and the values reference A.3/A.4 name.
"""

from __future__ import annotations

import uuid

from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    Attach,
    Begin,
    Close,
    ConnectionClosed,
    ConnectionOpened,
    CreditChanged,
    Data,
    DeliveryUpdated,
    Described,
    Detach,
    Disposition,
    End,
    Flow,
    Int,
    LinkAttachRequested,
    LinkDetached,
    Long,
    Message,
    MessageReceived,
    Open,
    Properties,
    SaslInit,
    SaslInitReceived,
    SaslMechanisms,
    SaslOutcome,
    SessionBegun,
    SessionEnded,
    Source,
    Symbol,
    Target,
    Transfer,
    ULong,
    Value,
    decode_message,
    encode_message,
)
from twin_explorer.localhub.protocols.amqp.composite import Composite

from . import golden
from .peer import AMQP, SASL, Peer, frame

CLIENT_VERSION = {Symbol("com.microsoft:client-version"):
                  "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)"}


def full_length(out) -> None:
    """Every composite we wrote carries all its fields (gotcha 1)."""
    for item in out:
        body = item.raw_body
        if item.header is None and body and body[3] != 0x45:
            value = item.performative
            assert isinstance(value, Composite)
            count = body[5] if body[3] == 0xC0 else int.from_bytes(body[8:12], "big")
            assert count == len(value._FIELDS), f"{type(value).__name__} written short"


def attach_requested(events) -> list:
    return [e.link for e in events if isinstance(e, LinkAttachRequested)]


def test_node_module_client_session():
    peer = Peer()
    ev = peer.feed(AMQP, frame(0, Open(container_id="8f6de8c1-50a4-4c4c-b2c7-d102d600662e",
                                       hostname="localhost")))
    assert ev == [ConnectionOpened("8f6de8c1-50a4-4c4c-b2c7-d102d600662e", "localhost",
                                   0xFFFFFFFF, None, None)]
    out = peer.output()
    assert out[0].header == AMQP
    open_ = out[1].performative
    # Reference A.3: the OPEN reply that worked for every client.
    assert open_ == Open(container_id="localhub", hostname=None, max_frame_size=65536,
                         channel_max=8191, idle_timeout=240000)
    assert peer.feed(frame(0, Begin(next_outgoing_id=0, incoming_window=2048,
                                    outgoing_window=0xFFFFFFFF))) == [SessionBegun(0)]
    begin = peer.performatives()[0]
    assert (begin.remote_channel, begin.next_outgoing_id, begin.incoming_window,
            begin.outgoing_window, begin.handle_max) == (0, 0, 5000, 5000, 255)

    # $cbs pair: a client sender with an empty source, a client receiver with an empty target.
    ev = peer.feed(
        frame(0, Attach(name="rheaSender_4df8", handle=0, role=False, snd_settle_mode=None,
                        rcv_settle_mode=None, source=Source(), target=Target(address="$cbs"),
                        initial_delivery_count=0, properties=CLIENT_VERSION)),
        frame(0, Attach(name="rheaReceiver_8ba6", handle=1, role=True, snd_settle_mode=None,
                        rcv_settle_mode=None, source=Source(address="$cbs"), target=Target(),
                        properties=CLIENT_VERSION)))
    cbs_in, cbs_out = attach_requested(ev)
    assert (cbs_in.role, cbs_in.address, cbs_in.properties) == ("sender", "$cbs", CLIENT_VERSION)
    assert (cbs_out.role, cbs_out.address) == ("receiver", "$cbs")
    peer.conn.accept_link(cbs_in)
    peer.conn.grant_credit(cbs_in, 100)
    peer.conn.accept_link(cbs_out)
    reply_in, flow, reply_out = peer.performatives()
    assert (reply_in.name, reply_in.role, reply_in.handle) == ("rheaSender_4df8", True, 0)
    assert reply_in.target == Target(address="$cbs") and reply_in.source == Source()
    assert reply_in.initial_delivery_count is None and reply_in.max_message_size == 262144
    assert (flow.handle, flow.link_credit, flow.delivery_count) == (0, 100, 0)
    assert (reply_out.role, reply_out.initial_delivery_count) == (False, 0)
    assert reply_out.target == Target(), "Node's empty target is echoed, never null"
    assert reply_out.source.address == "$cbs"

    ev = peer.feed(frame(0, Transfer(handle=0, delivery_id=0, delivery_tag=b"0",
                                     message_format=0, settled=False), golden.CBS_PUT_TOKEN))
    (put,) = ev
    assert isinstance(put, MessageReceived) and put.link is cbs_in and not put.settled
    assert put.delivery_tag == b"0" and put.message.application_properties["operation"] == \
        "put-token"
    peer.conn.settle(cbs_in, put.delivery_id, Accepted())
    (disposition,) = peer.performatives()
    assert disposition == Disposition(role=True, first=0, last=0, settled=True,
                                      state=Accepted())
    ev = peer.feed(frame(0, Flow(next_incoming_id=0, incoming_window=2048, next_outgoing_id=1,
                                 outgoing_window=0xFFFFFFFE, handle=1, delivery_count=0,
                                 link_credit=1000)))
    assert ev == [CreditChanged(cbs_out, 1000, False)]
    reply = Message(properties=Properties(correlation_id=put.message.properties.message_id),
                    application_properties={"status-code": Int(200),
                                            "status-description": "OK"})
    delivery = peer.conn.send(cbs_out, reply, settled=True)
    assert delivery is not None and len(delivery.tag) == 16
    (out,) = peer.output()
    assert out.performative.handle == 1 and out.performative.settled is True
    echoed = decode_message(out.payload)
    assert echoed.properties.correlation_id == "ca9dcd72-ec3e-4ca3-966c-dbd7287352fb"
    assert type(echoed.properties.correlation_id) is str
    assert peer.feed(frame(0, Disposition(role=True, first=0, last=0, settled=True,
                                          state=Accepted()))) == []

    # Methods and twin links (handles 2-5), then telemetry on handle 6.
    base = "/devices/d1/modules/m1"
    props = {**CLIENT_VERSION, Symbol("com.microsoft:api-version"): "2021-04-12"}
    ev = peer.feed(
        frame(0, Attach(name="m-s", handle=2, role=False, snd_settle_mode=None,
                        source=Source(), target=Target(address=f"{base}/methods/devicebound"),
                        initial_delivery_count=0, properties=props)),
        frame(0, Attach(name="t-s", handle=3, role=False, snd_settle_mode=1,
                        source=Source(), target=Target(address=f"{base}/twin"),
                        initial_delivery_count=0, properties=props)),
        frame(0, Attach(name="m-r", handle=4, role=True, snd_settle_mode=None,
                        source=Source(address=f"{base}/methods/devicebound"), target=Target(),
                        properties=props)),
        frame(0, Attach(name="t-r", handle=5, role=True, snd_settle_mode=None,
                        source=Source(address=f"{base}/twin"), target=Target(),
                        properties=props)))
    methods_in, twin_in, methods_out, twin_out = attach_requested(ev)
    assert twin_in.snd_settle_mode == 1 and twin_out.address == f"{base}/twin"
    for link in (methods_in, twin_in):
        peer.conn.accept_link(link)
        peer.conn.grant_credit(link, 100)
    for link in (methods_out, twin_out):
        peer.conn.accept_link(link)
    replies = peer.performatives(Attach)
    assert [r.snd_settle_mode for r in replies] == [2, 1, 2, 2]  # echoed
    ev = peer.feed(*(frame(0, Flow(next_incoming_id=1, incoming_window=2048,
                                   next_outgoing_id=1, outgoing_window=0xFFFFFFFE, handle=h,
                                   delivery_count=0, link_credit=1000)) for h in (4, 5)))
    assert [(e.link, e.credit) for e in ev] == [(methods_out, 1000), (twin_out, 1000)]

    ev = peer.feed(frame(0, Transfer(handle=3, delivery_id=1, delivery_tag=b"0",
                                     message_format=0, settled=True), golden.TWIN_GET))
    (get,) = ev
    assert get.link is twin_in and get.settled
    peer.conn.settle(twin_in, get.delivery_id, Accepted())  # settled already: nothing written
    assert peer.output() == []
    response = Message(message_annotations={Symbol("status"): Long(200)},
                       properties=Properties(correlation_id=get.message.properties.correlation_id),
                       body=[Data(b'{"desired": {}, "reported": {}}')])
    assert peer.conn.send(twin_out, response, settled=True) is not None

    ev = peer.feed(
        frame(0, Attach(name="e-s", handle=6, role=False, snd_settle_mode=None,
                        source=Source(), target=Target(address=f"{base}/messages/events"),
                        initial_delivery_count=0, properties=CLIENT_VERSION)))
    (events_in,) = attach_requested(ev)
    peer.conn.accept_link(events_in)
    peer.conn.grant_credit(events_in, 100)
    (telemetry,) = peer.feed(frame(0, Transfer(handle=6, delivery_id=4, delivery_tag=b"0",
                                               message_format=0, settled=False),
                                   golden.TELEMETRY))
    assert telemetry.message.data == b'{"temp":20}' and not telemetry.settled
    peer.conn.settle(events_in, 4, Accepted())

    # Method request out (uuid correlation), response back unsettled, accepted.
    request_id = uuid.UUID("8b8c704c-887b-4fa8-aebd-46f6d51a3138")
    sent = peer.conn.send(methods_out, Message(
        properties=Properties(correlation_id=request_id),
        application_properties={"IoThub-methodname": "reboot"},
        body=[Data(b'{"delay": 1}')]), settled=True)
    assert sent is not None
    (answer,) = peer.feed(frame(0, Transfer(handle=2, delivery_id=6, delivery_tag=b"0",
                                            message_format=0, settled=False),
                                golden.METHOD_RESPONSE))
    assert answer.message.properties.correlation_id == request_id
    peer.conn.settle(methods_in, 6, Accepted())

    # Teardown: seven detaches, then list0 END and CLOSE.
    ev = peer.feed(*(frame(0, Detach(handle=h, closed=True)) for h in range(7)))
    assert [type(e) for e in ev] == [LinkDetached] * 7
    assert all(e.closed and e.error is None for e in ev)
    detaches = peer.performatives(Detach)
    assert sorted(d.handle for d in detaches) == list(range(7))
    ev = peer.feed(b"\x00\x00\x00\x0c\x02\x00\x00\x00\x00\x53\x17\x45",
                   b"\x00\x00\x00\x0c\x02\x00\x00\x00\x00\x53\x18\x45")
    assert ev == [SessionEnded(0), ConnectionClosed(None)]
    assert peer.performatives() == [End(), Close()]
    full_length(peer.sent)
    assert peer.conn.closed


def sasl_prelude(peer: Peer, mechanism: str, response: bytes | None = None) -> SaslInitReceived:
    ev = peer.feed(SASL)
    assert ev == []
    out = peer.output()
    assert out[0].header == SASL
    assert out[1].frame_type == 1
    assert out[1].performative == SaslMechanisms(
        [Symbol("MSSBCBS"), Symbol("PLAIN"), Symbol("ANONYMOUS")])
    (init,) = peer.feed(frame(0, SaslInit(Symbol(mechanism), response, "localhost"),
                              sasl=True, short=response is None))
    return init


def test_eventhub_consumer_session():
    peer = Peer()
    init = sasl_prelude(peer, "ANONYMOUS", b"")
    assert (init.mechanism, init.initial_response, init.hostname) == ("ANONYMOUS", b"",
                                                                      "localhost")
    assert peer.conn.sasl_outcome(True) == []
    (outcome,) = peer.output()
    assert outcome.performative == SaslOutcome(code=0) and outcome.frame_type == 1
    ev = peer.feed(AMQP, frame(0, Open(container_id="cd764b62", hostname="localhost",
                                       max_frame_size=1048576, channel_max=65535), short=False),
                   frame(1, Begin(next_outgoing_id=0, incoming_window=65536,
                                  outgoing_window=65536), short=False))
    assert [type(e) for e in ev] == [ConnectionOpened, SessionBegun]
    assert ev[1].channel == 1
    out = peer.output()
    assert out[0].header == AMQP
    assert out[2].channel == 1 and out[2].performative.remote_channel == 1

    selector = Symbol("apache.org:selector-filter:string")
    source = Source(address="amqps://localhost/myhub/ConsumerGroups/$Default/Partitions/0",
                    filter={selector: Described(selector, "amqp.annotation.x-opt-offset > '-1'")})
    ev = peer.feed(frame(1, Attach(
        name="2b8245ca", handle=3, role=True, snd_settle_mode=0, rcv_settle_mode=0,
        source=source, target=Target(address="receiver-link-2b8245ca"),
        max_message_size=1048576,
        desired_capabilities=[Symbol("com.microsoft:georeplication")],
        properties={Symbol("com.microsoft:timeout"): 0}), short=False))
    (consumer,) = attach_requested(ev)
    assert consumer.source.filter[selector].value == "amqp.annotation.x-opt-offset > '-1'"
    assert consumer.max_message_size == 1048576
    peer.conn.accept_link(consumer)
    (reply,) = peer.performatives()
    # Reference A.4: the full source with its described filter, non-null target, count 0.
    assert reply.source == source and reply.target == Target(address="receiver-link-2b8245ca")
    assert reply.initial_delivery_count == 0 and reply.role is False
    assert (reply.snd_settle_mode, reply.rcv_settle_mode) == (0, 0)

    assert peer.conn.send(consumer, Message(body=[Data(b"e")]), settled=True) is None
    ev = peer.feed(frame(1, Flow(next_incoming_id=1, incoming_window=65535, next_outgoing_id=1,
                                 outgoing_window=65535, handle=3, delivery_count=0,
                                 link_credit=300), short=False))
    assert ev == [CreditChanged(consumer, 300, False)]
    event = Message(message_annotations={Symbol("x-opt-sequence-number"): Long(0),
                                         Symbol("x-opt-offset"): "0"},
                    body=[Data(b'{"temp":20}')])
    assert peer.conn.send(consumer, event, settled=True) is not None
    (transfer,) = peer.output()
    assert transfer.channel == 1 and decode_message(transfer.payload) == event

    # Teardown as logged: detach, END, then detaches on the ended channel, then CLOSE.
    ev = peer.feed(frame(1, Detach(handle=3, closed=True), short=False),
                   frame(1, End(), short=False),
                   frame(1, Detach(handle=4, closed=False), short=False),
                   frame(0, Close(), short=False))
    assert [type(e) for e in ev] == [LinkDetached, SessionEnded, ConnectionClosed]
    assert ev[-1].error is None
    assert [type(p) for p in peer.performatives()] == [Detach, End, Close]
    full_length(peer.sent)


def test_uamqp_c2d_sender_with_mssbcbs():
    peer = Peer()
    init = sasl_prelude(peer, "MSSBCBS")
    assert init.mechanism == "MSSBCBS" and init.initial_response is None
    peer.conn.sasl_outcome(True)
    ev = peer.feed(AMQP + frame(0, Open(container_id="a88c3c4e", hostname="localhost",
                                        max_frame_size=65536, channel_max=65535))
                   + frame(0, Begin(next_outgoing_id=0, incoming_window=65536,
                                    outgoing_window=65536, handle_max=0xFFFFFFFF)))
    assert [type(e) for e in ev] == [ConnectionOpened, SessionBegun]
    ev = peer.feed(
        frame(0, Attach(name="$cbs-sender", handle=0, role=False, snd_settle_mode=0,
                        rcv_settle_mode=0, source=Source(address="$cbs"),
                        target=Target(address="$cbs"), initial_delivery_count=0,
                        max_message_size=0)),
        frame(0, Attach(name="$cbs-receiver", handle=1, role=True, snd_settle_mode=0,
                        rcv_settle_mode=0, source=Source(address="$cbs"),
                        target=Target(address="$cbs"), max_message_size=0)))
    cbs_in, cbs_out = attach_requested(ev)
    assert cbs_in.max_message_size is None, "0 means no limit"
    for link in (cbs_in, cbs_out):
        peer.conn.accept_link(link)
    peer.conn.grant_credit(cbs_in, 100)
    token = Message(properties=Properties(message_id=ULong(0)),
                    application_properties={"name": "https://localhost",
                                            "operation": "put-token",
                                            "type": "servicebus.windows.net:sastoken"},
                    body=Value("SharedAccessSignature sr=localhost&sig=x&se=1&skn=service"))
    (put,) = peer.feed(frame(0, Transfer(handle=0, delivery_id=0, delivery_tag=b"\x01\x00\x00\x00",
                                         message_format=0, settled=False),
                             encode_message(token)))
    assert put.message.properties.message_id == ULong(0)
    assert type(put.message.properties.message_id) is ULong
    peer.conn.settle(cbs_in, 0, Accepted())
    peer.feed(frame(0, Flow(next_incoming_id=0, incoming_window=65536, next_outgoing_id=1,
                            outgoing_window=65535, handle=1, delivery_count=0,
                            link_credit=10000)))
    peer.conn.send(cbs_out, Message(properties=Properties(correlation_id=ULong(0)),
                                    application_properties={"status-code": Int(200)}),
                   settled=True)
    # uamqp acknowledges the settled reply anyway: harmless.
    assert peer.feed(frame(0, Disposition(role=True, first=0, last=0, settled=True,
                                          state=Accepted()))) == []
    assert [type(p) for p in peer.performatives()] == [
        SaslOutcome, Open, Begin, Attach, Attach, Flow, Disposition, Transfer]

    ev = peer.feed(frame(0, Attach(
        name="sender-link-57e1", handle=2, role=False, snd_settle_mode=0, rcv_settle_mode=1,
        source=Source(address="a88c3c4e"),
        target=Target(address="amqps://localhost/messages/devicebound"),
        initial_delivery_count=0, max_message_size=1048576)))
    (c2d,) = attach_requested(ev)
    assert c2d.rcv_settle_mode == 1 and c2d.address == "amqps://localhost/messages/devicebound"
    peer.conn.accept_link(c2d)
    peer.conn.grant_credit(c2d, 100)
    reply, flow = peer.performatives()
    assert reply.rcv_settle_mode == 1 and flow.link_credit == 100
    message = Message(properties=Properties(message_id="22aefc06",
                                            to="/devices/d1/messages/devicebound",
                                            content_type="application/json"),
                      application_properties={"prop1": "v1", "$.mid": "c2d-1"},
                      body=[Data(b'{"cmd":"on"}')])
    (got,) = peer.feed(frame(0, Transfer(handle=2, delivery_id=1, delivery_tag=b"\x01\x00\x00\x00",
                                         message_format=0, settled=False),
                             encode_message(message)))
    assert got.message == decode_message(encode_message(message))
    peer.conn.settle(c2d, 1, Accepted())
    (disposition,) = peer.performatives()
    assert (disposition.first, disposition.settled, disposition.state) == (1, True, Accepted())
    ev = peer.feed(frame(0, Detach(handle=2, closed=True)), frame(0, Detach(handle=0, closed=True)),
                   frame(0, Detach(handle=1, closed=True)), frame(0, End()), frame(0, Close()))
    assert [type(e) for e in ev] == [LinkDetached] * 3 + [SessionEnded, ConnectionClosed]
    full_length(peer.sent)


def test_device_completes_c2d_sent_unsettled():
    """F.3 device side: C2D goes out unsettled with a 16-byte tag; the device's disposition
    comes back as DeliveryUpdated for that tag."""
    peer = Peer()
    peer.feed(AMQP, frame(0, Open(container_id="dev", hostname="localhost")),
              frame(0, Begin(next_outgoing_id=0, incoming_window=2048,
                             outgoing_window=0xFFFFFFFF)))
    (req,) = peer.feed(frame(0, Attach(name="c2d", handle=0, role=True, rcv_settle_mode=1,
                                       source=Source(address="/devices/d1/messages/devicebound"),
                                       target=Target())))
    link = req.link
    peer.conn.accept_link(link)
    peer.feed(frame(0, Flow(next_incoming_id=0, incoming_window=2048, next_outgoing_id=0,
                            outgoing_window=0xFFFFFFFF, handle=0, delivery_count=0,
                            link_credit=1000)))
    first = peer.conn.send(link, Message(body=[Data(b"1")]), settled=False)
    second = peer.conn.send(link, Message(body=[Data(b"2")]), settled=False)
    assert first.tag != second.tag and len(first.tag) == len(second.tag) == 16
    transfers = peer.performatives(Transfer)
    assert [t.settled for t in transfers] == [False, False]
    ev = peer.feed(frame(0, Disposition(role=True, first=first.delivery_id,
                                        last=second.delivery_id, settled=True,
                                        state=Accepted())))
    assert ev == [DeliveryUpdated(link, first.tag, Accepted(), True),
                  DeliveryUpdated(link, second.tag, Accepted(), True)]
    # Settled deliveries are forgotten: a repeat disposition reports nothing.
    assert peer.feed(frame(0, Disposition(role=True, first=0, last=1, settled=True,
                                          state=Accepted()))) == []
