"""Engine rules one at a time: headers and SASL, sessions, credit, windows, splitting and
reassembly, heartbeats and idle timeout, and the limits that bound a hostile peer."""

from __future__ import annotations

import pytest

from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    Attach,
    Begin,
    Close,
    ConnectionClosed,
    ConnectionOpened,
    CreditChanged,
    Data,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    LinkAttachRequested,
    LinkDetached,
    Message,
    MessageReceived,
    Open,
    Rejected,
    SaslInit,
    SaslInitReceived,
    SaslOutcome,
    ServerConnection,
    SessionBegun,
    SessionEnded,
    Source,
    Symbol,
    Target,
    Transfer,
    decode_message,
    encode_message,
    errors,
)

from .peer import AMQP, SASL, Peer, frame


def opened(conn: ServerConnection | None = None, **open_fields) -> Peer:
    peer = Peer(conn)
    open_fields.setdefault("hostname", "localhost")
    peer.feed(AMQP, frame(0, Open(container_id="c", **open_fields)))
    peer.output()
    return peer


def session(peer: Peer, channel: int = 0, incoming_window: int = 2048) -> None:
    assert peer.feed(frame(channel, Begin(next_outgoing_id=0, incoming_window=incoming_window,
                                          outgoing_window=0xFFFFFFFF))) == [
        SessionBegun(channel)]
    peer.output()


def client_sender(peer: Peer, handle: int = 0, channel: int = 0, credit: int = 10,
                  **accept):
    (req,) = peer.feed(frame(channel, Attach(name=f"s{channel}.{handle}", handle=handle,
                                             role=False, source=Source(),
                                             target=Target(address="/devices/d1/messages/events"),
                                             initial_delivery_count=0)))
    peer.conn.accept_link(req.link, **accept)
    if credit:
        peer.conn.grant_credit(req.link, credit)
    peer.output()
    return req.link


def client_receiver(peer: Peer, handle: int = 1, channel: int = 0, credit: int = 10):
    (req,) = peer.feed(frame(channel, Attach(name=f"r{channel}.{handle}", handle=handle,
                                             role=True, source=Source(address="/devices/d1/twin"),
                                             target=Target())))
    peer.conn.accept_link(req.link)
    if credit:
        peer.feed(flow(handle, credit, channel=channel))
    peer.output()
    return req.link


def flow(handle: int, credit: int, *, delivery_count: int = 0, drain: bool = False,
         channel: int = 0, next_incoming_id: int = 0, incoming_window: int = 2048):
    return frame(channel, Flow(next_incoming_id=next_incoming_id,
                               incoming_window=incoming_window, next_outgoing_id=0,
                               outgoing_window=0xFFFFFFFF, handle=handle,
                               delivery_count=delivery_count, link_credit=credit, drain=drain))


def transfer(handle: int, delivery_id: int | None, payload: bytes, *, more: bool = False,
             settled: bool = False, tag: bytes | None = b"t", channel: int = 0,
             aborted: bool = False) -> bytes:
    return frame(channel, Transfer(handle=handle, delivery_id=delivery_id, delivery_tag=tag,
                                   message_format=0 if tag else None, settled=settled,
                                   more=more, aborted=aborted), payload)


def closed_with(events, condition) -> None:
    assert isinstance(events[-1], ConnectionClosed), events
    assert events[-1].error.condition == condition


MESSAGE = encode_message(Message(body=[Data(b"hello")]))

# ---------------------------------------------------------------- headers and SASL


@pytest.mark.parametrize(("header", "answer"), [
    (b"HTTP/1.1", AMQP),
    (b"AMQP\x01\x01\x00\x00", AMQP),      # TLS-in-AMQP header (protocol id 2 is TLS)
    (b"AMQP\x00\x01\x00\x01", AMQP),      # another AMQP version
    (b"AMQP\x03\x01\x00\x01", SASL),      # another SASL version
])
def test_wrong_header_gets_ours_then_close(header, answer):
    peer = Peer()
    events = peer.feed(header + b"more bytes")
    closed_with(events, errors.NOT_ALLOWED)
    assert peer.conn.data_to_send() == answer
    assert peer.feed(AMQP) == [], "nothing is accepted after the close"


def test_header_split_over_reads():
    peer = Peer()
    assert peer.feed(b"AM", b"QP\x00", b"\x01\x00") == []
    assert peer.conn.data_to_send() == b""
    assert peer.feed(b"\x00") == []
    assert peer.conn.data_to_send() == AMQP


def test_plain_credentials_are_parsed_and_never_shown():
    peer = Peer()
    peer.feed(SASL)
    peer.output()
    response = b"\x00iothubowner@sas.root.hub\x00SharedAccessSignature sr=x&sig=secret"
    (init,) = peer.feed(frame(0, SaslInit(Symbol("PLAIN"), response, "localhost"), sasl=True))
    assert isinstance(init, SaslInitReceived)
    assert init.authcid == "iothubowner@sas.root.hub"
    assert init.password == "SharedAccessSignature sr=x&sig=secret"
    assert "secret" not in repr(init)


def test_failed_sasl_answers_auth_and_closes():
    peer = Peer()
    peer.feed(SASL, frame(0, SaslInit(Symbol("PLAIN"), b"\x00u\x00p"), sasl=True))
    peer.output()
    events = peer.conn.sasl_outcome(False)
    closed_with(events, errors.UNAUTHORIZED_ACCESS)
    (outcome,) = peer.performatives()
    assert outcome == SaslOutcome(code=1)
    assert peer.feed(AMQP) == []


def test_mechanism_not_offered_is_refused():
    peer = Peer(ServerConnection(sasl_mechanisms=("ANONYMOUS",)))
    peer.feed(SASL)
    peer.output()
    events = peer.feed(frame(0, SaslInit(Symbol("MSSBCBS")), sasl=True))
    closed_with(events, errors.UNAUTHORIZED_ACCESS)
    assert peer.performatives() == [SaslOutcome(code=1)]


def test_bytes_pipelined_after_sasl_init_wait_for_the_outcome():
    peer = Peer()
    events = peer.feed(SASL + frame(0, SaslInit(Symbol("ANONYMOUS"), b""), sasl=True) + AMQP
                       + frame(0, Open(container_id="c")))
    assert [type(e) for e in events] == [SaslInitReceived]
    events = peer.conn.sasl_outcome(True)
    assert [type(e) for e in events] == [ConnectionOpened]
    kinds = [o.header or type(o.performative) for o in peer.output()]
    assert kinds[-3:] == [SaslOutcome, AMQP, Open]


def test_second_sasl_header_after_sasl_is_refused():
    peer = Peer()
    peer.feed(SASL, frame(0, SaslInit(Symbol("ANONYMOUS")), sasl=True))
    peer.conn.sasl_outcome(True)
    peer.output()
    closed_with(peer.feed(SASL), errors.NOT_ALLOWED)


def test_garbage_instead_of_open_gets_open_then_close():
    peer = Peer()
    events = peer.feed(AMQP + b"\x00\x00\x00\x0a\x02\x00\x00\x00\x99\x99")
    closed_with(events, errors.DECODE_ERROR)
    open_, close = peer.performatives()
    assert isinstance(open_, Open) and close.error.condition == errors.DECODE_ERROR


def test_tiny_max_frame_size_is_refused():
    peer = Peer()
    closed_with(peer.feed(AMQP, frame(0, Open(container_id="c", max_frame_size=100))),
                errors.FRAME_SIZE_TOO_SMALL)


def test_eof_reports_closed():
    peer = opened()
    assert peer.feed(b"") == [ConnectionClosed(None)]
    assert peer.conn.closed


# ---------------------------------------------------------------- sessions and links


def test_sessions_on_several_channels_keep_links_apart():
    peer = opened()
    session(peer, 0)
    session(peer, 5)
    a = client_sender(peer, handle=0, channel=0)
    b = client_sender(peer, handle=0, channel=5)
    (got,) = peer.feed(transfer(0, 0, MESSAGE, channel=5))
    assert got.link is b and got.link is not a
    assert (b.session, b.handle) == (5, 0)
    assert peer.feed(frame(5, End())) == [LinkDetached(b, None, False), SessionEnded(5)]
    assert peer.performatives() == [End()]
    (again,) = peer.feed(transfer(0, 1, MESSAGE, channel=0))
    assert again.link is a


def test_refused_link_gets_null_terminus_then_closed_detach():
    peer = opened()
    session(peer)
    (req,) = peer.feed(frame(0, Attach(name="x", handle=0, role=False, source=Source(),
                                       target=Target(address="/nowhere"))))
    peer.conn.refuse_link(req.link, Error(errors.NOT_FOUND, "no such node"))
    attach, detach = peer.performatives()
    assert attach.role is True and attach.target is None and attach.source == Source()
    assert detach.closed and detach.error == Error(errors.NOT_FOUND, "no such node")
    # The client's answering detach completes it quietly.
    assert peer.feed(frame(0, Detach(handle=0, closed=True))) == []


def test_our_detach_then_the_clients_reply():
    peer = opened()
    session(peer)
    link = client_sender(peer)
    peer.conn.detach(link, Error(errors.UNAUTHORIZED_ACCESS, "token expired"))
    (detach,) = peer.performatives()
    assert detach.error.condition == errors.UNAUTHORIZED_ACCESS
    assert peer.feed(transfer(0, 0, MESSAGE)) == [], "in flight: dropped"
    assert peer.feed(frame(0, Detach(handle=0, closed=True))) == []
    (req,) = peer.feed(frame(0, Attach(name="again", handle=0, role=False, target=Target())))
    assert isinstance(req, LinkAttachRequested), "the handle is free again"


def test_our_close_then_the_clients_close():
    peer = opened()
    session(peer)
    peer.conn.close(Error(errors.CONNECTION_FORCED, "hub stopping"))
    (close,) = peer.performatives()
    assert close.error.condition == errors.CONNECTION_FORCED
    assert peer.feed(frame(0, Flow(incoming_window=1, next_outgoing_id=0,
                                   outgoing_window=1))) == []
    assert peer.feed(frame(0, Close())) == [ConnectionClosed(None)]
    assert peer.performatives() == []


# ---------------------------------------------------------------- credit and transfers


def test_client_sender_needs_our_credit():
    peer = opened()
    session(peer)
    link = client_sender(peer, credit=2)
    assert len(peer.feed(transfer(0, 0, MESSAGE), transfer(0, 1, MESSAGE))) == 2
    (detached,) = peer.feed(transfer(0, 2, MESSAGE))
    assert detached == LinkDetached(link, detached.error, True)
    assert detached.error.condition == errors.TRANSFER_LIMIT_EXCEEDED
    assert peer.performatives(Detach)[0].error.condition == errors.TRANSFER_LIMIT_EXCEEDED


def test_granting_credit_sends_delivery_count_and_credit():
    peer = opened()
    session(peer)
    link = client_sender(peer, credit=1)
    peer.feed(transfer(0, 0, MESSAGE, settled=True))
    peer.conn.grant_credit(link, 50)
    (flow_out,) = peer.performatives()
    assert (flow_out.delivery_count, flow_out.link_credit) == (1, 50)


def test_we_send_only_with_credit_and_count_deliveries():
    peer = opened()
    session(peer)
    link = client_receiver(peer, credit=0)
    assert peer.conn.send(link, Message(), settled=True) is None
    assert peer.feed(flow(1, 2)) == [CreditChanged(link, 2, False)]
    assert peer.conn.send(link, Message(), settled=True) is not None
    assert peer.conn.send(link, Message(), settled=True) is not None
    assert peer.conn.send(link, Message(), settled=True) is None
    # The client saw both: delivery-count 2 plus 5 credit = 5 more for us.
    assert peer.feed(flow(1, 5, delivery_count=2)) == [CreditChanged(link, 5, False)]
    # A flow that predates our sends (count 0, credit 5) leaves only what is left of it.
    assert peer.feed(flow(1, 5, delivery_count=0)) == [CreditChanged(link, 3, False)]


def test_drain_spends_the_credit_when_asked():
    peer = opened()
    session(peer)
    link = client_receiver(peer, credit=0)
    assert peer.feed(flow(1, 10, drain=True)) == [CreditChanged(link, 10, True)]
    peer.conn.send(link, Message(), settled=True)
    peer.output()
    peer.conn.complete_drain(link)
    (flow_out,) = peer.performatives()
    assert (flow_out.delivery_count, flow_out.link_credit, flow_out.drain) == (10, 0, True)
    assert link.credit == 0


def test_large_message_is_split_at_the_peers_frame_size():
    peer = opened(max_frame_size=512)
    session(peer)
    link = client_receiver(peer)
    body = bytes(range(256)) * 12
    delivery = peer.conn.send(link, Message(body=[Data(body)]), settled=False)
    frames = peer.output()
    assert len(frames) >= 6
    assert all(len(f.raw_body) + 8 <= 512 for f in frames)
    assert [f.performative.more for f in frames] == [True] * (len(frames) - 1) + [False]
    assert frames[0].performative.delivery_tag == delivery.tag
    assert all(f.performative.delivery_tag is None for f in frames[1:])
    assert decode_message(b"".join(f.payload for f in frames)).data == body


def test_multi_frame_transfer_is_reassembled():
    peer = opened()
    session(peer)
    link = client_sender(peer)
    payload = encode_message(Message(body=[Data(b"x" * 3000)]))
    parts = [payload[:1000], payload[1000:2000], payload[2000:]]
    assert peer.feed(transfer(0, 0, parts[0], more=True),
                     transfer(0, None, parts[1], more=True, tag=None)) == []
    (got,) = peer.feed(transfer(0, None, parts[2], tag=None))
    assert got.link is link and got.message.data == b"x" * 3000 and got.delivery_tag == b"t"


def test_aborted_transfer_is_dropped():
    peer = opened()
    session(peer)
    client_sender(peer)
    peer.feed(transfer(0, 0, MESSAGE[:5], more=True))
    assert peer.feed(transfer(0, None, b"", tag=None, aborted=True)) == []
    (got,) = peer.feed(transfer(0, 1, MESSAGE))
    assert got.delivery_id == 1


def test_message_over_the_link_limit_detaches_the_link_only():
    peer = opened()
    session(peer)
    link = client_sender(peer, max_message_size=1000)
    assert peer.performatives() == []
    ev = peer.feed(transfer(0, 0, b"x" * 600, more=True), transfer(0, None, b"x" * 600,
                                                                  tag=None, more=True))
    (detached,) = ev
    assert detached.link is link and detached.error.condition == errors.MESSAGE_SIZE_EXCEEDED
    (detach,) = peer.performatives()
    assert detach.error.condition == errors.MESSAGE_SIZE_EXCEEDED and detach.closed
    assert peer.feed(transfer(0, None, b"x" * 600, tag=None)) == []
    assert not peer.conn.closed


def test_undecodable_message_is_rejected_not_fatal():
    peer = opened()
    session(peer)
    client_sender(peer)
    assert peer.feed(transfer(0, 0, b"\x00\x53\x75\xa1\x00")) == []
    (disposition,) = peer.performatives()
    assert isinstance(disposition.state, Rejected)
    assert disposition.state.error.condition == errors.DECODE_ERROR
    assert not peer.conn.closed


def test_interleaved_deliveries_close_the_connection():
    peer = opened()
    session(peer)
    client_sender(peer)
    peer.feed(transfer(0, 0, b"\x00", more=True))
    closed_with(peer.feed(transfer(0, 1, b"\x00")), errors.INVALID_FIELD)


def test_disposition_over_a_huge_range_costs_only_what_is_outstanding():
    peer = opened()
    session(peer)
    link = client_receiver(peer)
    sent = peer.conn.send(link, Message(), settled=False)
    ev = peer.feed(frame(0, Disposition(role=True, first=0, last=0xFFFFFFFF, settled=True,
                                        state=Accepted())))
    assert [e.delivery_tag for e in ev] == [sent.tag]


# ---------------------------------------------------------------- session windows


def test_transfers_wait_for_the_peers_session_window():
    peer = opened()
    session(peer, incoming_window=2)
    link = client_receiver(peer, credit=0)
    peer.feed(flow(1, 10, incoming_window=2))
    for _ in range(3):
        assert peer.conn.send(link, Message(body=[Data(b"m")]), settled=True) is not None
    assert len(peer.performatives(Transfer)) == 2
    held = peer.conn.pending_output_bytes
    assert held > 0
    # The client's session flow opens the window again: the held transfer goes out.
    peer.feed(frame(0, Flow(next_incoming_id=2, incoming_window=2, next_outgoing_id=0,
                            outgoing_window=0xFFFFFFFF)))
    assert peer.conn.pending_output_bytes == held
    assert len(peer.performatives(Transfer)) == 1
    assert peer.conn.pending_output_bytes == 0


def test_our_incoming_window_is_reopened_before_it_runs_out():
    peer = opened(conn=ServerConnection(incoming_window=4))
    session(peer)
    client_sender(peer, credit=100)
    peer.feed(*(transfer(0, i, MESSAGE, settled=True) for i in range(2)))
    (session_flow,) = peer.performatives(Flow)
    assert session_flow.handle is None
    assert (session_flow.next_incoming_id, session_flow.incoming_window) == (2, 4)


def test_a_window_of_one_is_reopened_after_every_transfer():
    peer = opened(conn=ServerConnection(incoming_window=1))
    session(peer)
    link = client_sender(peer, credit=100)
    for i in range(5):
        (got,) = peer.feed(transfer(0, i, MESSAGE, settled=True))
        assert got.link is link


# ---------------------------------------------------------------- heartbeats and idle


def test_heartbeat_at_half_the_peers_idle_timeout():
    peer = opened(conn=ServerConnection(idle_timeout=0), idle_timeout=10000)
    conn = peer.conn
    assert conn.tick(100.0) == []
    assert conn.data_to_send(now=100.0) == b""
    assert conn.next_deadline() == 105.0
    assert conn.tick(104.9) == [] and conn.data_to_send() == b""
    conn.tick(105.0)
    assert conn.data_to_send(now=105.0) == b"\x00\x00\x00\x08\x02\x00\x00\x00"
    assert conn.next_deadline() == 110.0


def test_idle_peer_is_closed_with_a_reason():
    peer = opened(conn=ServerConnection(idle_timeout=240.0))
    conn = peer.conn
    conn.tick(0.0)
    assert conn.next_deadline() == 240.0
    assert conn.receive_data(b"\x00\x00\x00\x08\x02\x00\x00\x00", now=200.0) == []
    assert conn.tick(439.0) == []
    events = conn.tick(440.0)
    closed_with(events, errors.RESOURCE_LIMIT_EXCEEDED)
    (close,) = peer.performatives()
    assert "idle" in close.error.description
    assert conn.next_deadline() is None


# ---------------------------------------------------------------- limits


def test_frame_over_our_max_frame_size_is_a_framing_error():
    peer = opened(conn=ServerConnection(max_frame_size=4096))
    closed_with(peer.feed(b"\x00\x01\x00\x00\x02\x00\x00\x00"), errors.FRAMING_ERROR)
    (close,) = peer.performatives()
    assert close.error.condition == errors.FRAMING_ERROR


def test_bad_data_offset_is_a_framing_error():
    peer = opened()
    closed_with(peer.feed(b"\x00\x00\x00\x08\x01\x00\x00\x00"), errors.FRAMING_ERROR)


def test_channel_over_channel_max_closes():
    peer = opened(conn=ServerConnection(channel_max=3))
    closed_with(peer.feed(frame(4, Begin(next_outgoing_id=0, incoming_window=1,
                                         outgoing_window=1))), errors.NOT_ALLOWED)


def test_frame_on_a_channel_without_session_closes():
    peer = opened()
    closed_with(peer.feed(frame(2, Flow(incoming_window=1, next_outgoing_id=0,
                                        outgoing_window=1))), errors.NOT_ALLOWED)


def test_handle_over_handle_max_ends_the_session():
    peer = opened()
    session(peer)
    link = client_sender(peer, handle=0)
    ev = peer.feed(frame(0, Attach(name="big", handle=256, role=False, target=Target())))
    assert ev == [LinkDetached(link, None, False)]
    (end,) = peer.performatives()
    assert end.error.condition == errors.RESOURCE_LIMIT_EXCEEDED
    assert peer.feed(frame(0, End())) == [SessionEnded(0)]
    assert peer.performatives() == [], "the client's END answers ours"


def test_handle_in_use_ends_the_session():
    peer = opened()
    session(peer)
    client_sender(peer, handle=0)
    peer.feed(frame(0, Attach(name="dup", handle=0, role=False, target=Target())))
    (end,) = peer.performatives()
    assert end.error.condition == errors.HANDLE_IN_USE


def test_transfer_on_unknown_handle_ends_the_session():
    peer = opened()
    session(peer)
    peer.feed(transfer(9, 0, MESSAGE))
    (end,) = peer.performatives()
    assert end.error.condition == errors.UNATTACHED_HANDLE


def test_links_per_connection_are_capped():
    peer = opened(conn=ServerConnection(max_links=3))
    session(peer)
    for handle in range(3):
        client_sender(peer, handle=handle, credit=0)
    closed_with(peer.feed(frame(0, Attach(name="4th", handle=3, role=False, target=Target()))),
                errors.RESOURCE_LIMIT_EXCEEDED)


def test_unsettled_deliveries_are_capped():
    peer = opened(conn=ServerConnection(max_unsettled=3))
    session(peer)
    link = client_sender(peer, credit=100)
    assert len(peer.feed(*(transfer(0, i, MESSAGE) for i in range(3)))) == 3
    (detached,) = peer.feed(transfer(0, 3, MESSAGE))
    assert detached.link is link
    assert detached.error.condition == errors.RESOURCE_LIMIT_EXCEEDED


def test_settling_frees_room_for_more_unsettled():
    peer = opened(conn=ServerConnection(max_unsettled=1))
    session(peer)
    link = client_sender(peer, credit=100)
    for i in range(5):
        (got,) = peer.feed(transfer(0, i, MESSAGE))
        assert isinstance(got, MessageReceived)
        peer.conn.settle(link, got.delivery_id, Accepted())
    assert len(peer.performatives(Disposition)) == 5


def test_output_waiting_for_the_transport_is_counted():
    peer = opened()
    session(peer)
    link = client_receiver(peer, credit=100)
    assert peer.conn.pending_output_bytes == 0
    peer.conn.send(link, Message(body=[Data(b"x" * 1000)]), settled=True)
    assert peer.conn.pending_output_bytes > 1000
    peer.conn.data_to_send()
    assert peer.conn.pending_output_bytes == 0


def test_bytes_piling_up_during_sasl_are_bounded():
    peer = Peer(ServerConnection(max_frame_size=4096))
    peer.feed(SASL, frame(0, SaslInit(Symbol("ANONYMOUS")), sasl=True))
    assert peer.feed(b"\x00" * 4096) == []
    closed_with(peer.feed(b"\x00"), errors.FRAMING_ERROR)


def test_transfer_before_we_answered_the_attach_refuses_the_link_properly():
    peer = opened()
    session(peer)
    (req,) = peer.feed(frame(0, Attach(name="early", handle=0, role=False, source=Source(),
                                       target=Target(address="/x"))))
    (detached,) = peer.feed(transfer(0, 0, MESSAGE))
    assert detached.link is req.link
    attach, detach = peer.performatives()
    assert isinstance(attach, Attach) and attach.target is None, "attach comes before detach"
    assert detach.error.condition == errors.NOT_ALLOWED


def test_flow_without_link_credit_keeps_the_credit():
    peer = opened()
    session(peer)
    link = client_receiver(peer, credit=7)
    ev = peer.feed(frame(0, Flow(next_incoming_id=0, incoming_window=10, next_outgoing_id=0,
                                 outgoing_window=10, handle=1, echo=True)))
    assert ev == [] and link.credit == 7
    (echo,) = peer.performatives()
    assert (echo.handle, echo.link_credit) == (0, 7)


def test_client_settling_in_second_mode_frees_the_unsettled_slot():
    peer = opened(conn=ServerConnection(max_unsettled=1))
    session(peer)
    link = client_sender(peer, credit=100)
    for i in range(3):
        (got,) = peer.feed(transfer(0, i, MESSAGE))
        peer.conn.settle(link, i, Accepted(), settled=False)  # mode second: outcome first
        peer.feed(frame(0, Disposition(role=False, first=i, settled=True, state=Accepted())))
        assert isinstance(got, MessageReceived) and link.unsettled == {}
    assert [d.settled for d in peer.performatives(Disposition)] == [False] * 3


@pytest.mark.parametrize(("frames", "condition"), [
    ([frame(0, Begin(next_outgoing_id=0, incoming_window=1, outgoing_window=1))],
     errors.NOT_ALLOWED),                                      # begin before open
    ([frame(0, Open(container_id="c")), frame(0, Open(container_id="c"))],
     errors.NOT_ALLOWED),                                      # a second open
    ([frame(0, Open(container_id="c")), frame(0, SaslInit(Symbol("PLAIN")), sasl=True)],
     errors.FRAMING_ERROR),                                    # SASL frame after SASL
    ([frame(0, Open(container_id="c")), frame(0, SaslInit(Symbol("PLAIN")))],
     errors.NOT_ALLOWED),                                      # SASL body in an AMQP frame
    ([frame(0, Open(container_id="c")), frame(0, End(), b"\x40")],
     errors.FRAMING_ERROR),                                    # payload after END
    ([frame(0, Open(container_id="c"))] + [frame(0, Begin(
        next_outgoing_id=0, incoming_window=1, outgoing_window=1))] * 2,
     errors.NOT_ALLOWED),                                      # two sessions on one channel
    ([frame(0, Open(container_id="c")), frame(0, Begin(
        remote_channel=0, next_outgoing_id=0, incoming_window=1, outgoing_window=1))],
     errors.NOT_ALLOWED),                                      # answer to a begin never sent
])
def test_protocol_violations_close_with_a_condition(frames, condition):
    peer = Peer()
    events = peer.feed(AMQP, *frames)
    closed_with(events, condition)
    assert isinstance(peer.performatives()[-1], Close)


def test_first_transfer_without_a_tag_closes():
    peer = opened()
    session(peer)
    client_sender(peer)
    closed_with(peer.feed(transfer(0, 0, MESSAGE, tag=None)), errors.INVALID_FIELD)


def test_detach_of_an_unknown_handle_ends_the_session():
    peer = opened()
    session(peer)
    peer.feed(frame(0, Detach(handle=7)))
    (end,) = peer.performatives()
    assert end.error.condition == errors.UNATTACHED_HANDLE


@pytest.mark.parametrize("response", [None, b"only-one-part", b"\x00user\x00\xff\xfe"])
def test_malformed_plain_response_gives_no_credentials(response):
    peer = Peer()
    (init,) = peer.feed(SASL, frame(0, SaslInit(Symbol("PLAIN"), response), sasl=True))
    assert (init.authcid, init.password) == (None, None)


def test_sending_the_last_credit_ends_a_drain():
    peer = opened()
    session(peer)
    link = client_receiver(peer, credit=0)
    peer.feed(flow(1, 1, drain=True))
    assert link.drain
    peer.conn.send(link, Message(), settled=True)
    assert not link.drain and link.credit == 0
    peer.conn.complete_drain(link)
    assert peer.performatives(Flow) == [], "nothing left to drain"


def test_close_before_open_just_drops_the_connection():
    peer = Peer()
    peer.feed(SASL)
    peer.output()
    peer.conn.close()
    assert peer.conn.closed and peer.output() == []


def test_partly_sent_messages_share_one_budget_per_connection():
    peer = opened(conn=ServerConnection(max_reassembly_bytes=1500))
    session(peer)
    first = client_sender(peer, handle=0)
    second = client_sender(peer, handle=1)
    third = client_sender(peer, handle=2)
    assert peer.feed(transfer(0, 0, b"x" * 1000, more=True)) == []
    (detached,) = peer.feed(transfer(1, 1, b"x" * 1000, more=True))
    assert detached.link is second
    assert detached.error.condition == errors.RESOURCE_LIMIT_EXCEEDED
    # The first link's detach frees its bytes for another link's message.
    assert peer.feed(frame(0, Detach(handle=0, closed=True))) == [LinkDetached(first, None, True)]
    payload = encode_message(Message(body=[Data(b"y" * 1200)]))
    assert peer.feed(transfer(2, 2, payload[:1000], more=True)) == []
    (got,) = peer.feed(transfer(2, None, payload[1000:], tag=None))
    assert got.link is third and got.message.data == b"y" * 1200


def test_unsettled_deliveries_share_one_budget_per_connection():
    peer = opened(conn=ServerConnection(max_unsettled=2))
    session(peer)
    a = client_sender(peer, handle=0)
    b = client_sender(peer, handle=1)
    peer.feed(transfer(0, 0, MESSAGE), transfer(1, 1, MESSAGE))
    (detached,) = peer.feed(transfer(0, 2, MESSAGE))
    assert detached.link is a and detached.error.condition == errors.RESOURCE_LIMIT_EXCEEDED
    peer.feed(frame(0, Detach(handle=0, closed=True)))  # its unsettled delivery goes with it
    (got,) = peer.feed(transfer(1, 3, MESSAGE))
    assert got.link is b


def test_attach_frames_kept_for_live_links_are_bounded():
    peer = opened(conn=ServerConnection(max_frame_size=65536))
    session(peer)
    big = {"p": "x" * 60_000}
    events = []
    for handle in range(20):
        events += peer.feed(frame(0, Attach(name=f"l{handle}", handle=handle, role=False,
                                            target=Target(), properties=big)))
        if events and isinstance(events[-1], ConnectionClosed):
            break
    closed_with(events, errors.RESOURCE_LIMIT_EXCEEDED)
    assert sum(isinstance(e, LinkAttachRequested) for e in events) < 20
