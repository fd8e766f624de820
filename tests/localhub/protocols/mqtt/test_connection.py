"""The server connection state machine, driven packet by packet with injected time."""

from __future__ import annotations

import pytest

from twin_explorer.localhub.protocols.mqtt.codec import Decoder, encode
from twin_explorer.localhub.protocols.mqtt.connection import ConnectionState, ServerConnection
from twin_explorer.localhub.protocols.mqtt.errors import LocalProtocolError
from twin_explorer.localhub.protocols.mqtt.events import (
    NEED_DATA,
    PAUSED,
    ConnectRequested,
    Disconnected,
    DisconnectReason,
    PubAcked,
    Published,
    Subscribed,
    Unsubscribed,
)
from twin_explorer.localhub.protocols.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    Will,
)
from twin_explorer.localhub.protocols.mqtt.session import SessionStore

CONNECT = Connect("d1/m1", clean_session=False, keepalive=10, username="u", password=b"p")


class Peer:
    """The client end of one connection: packets in, packets seen coming back."""

    def __init__(self, now: float = 0.0) -> None:
        self.conn = ServerConnection(now)
        self._decoder = Decoder()

    def send(self, *packets, now: float = 0.0) -> None:
        self.conn.receive_data(b"".join(encode(p) for p in packets), now)

    def events(self) -> list:
        """Events up to NEED_DATA/PAUSED (not included) or a Disconnected (included)."""
        out = []
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA or event is PAUSED:
                return out
            out.append(event)
            if isinstance(event, Disconnected):
                return out

    def event(self):
        (event,) = self.events()
        return event

    def wire(self, data: bytes | None = None) -> list:
        """Decode bytes the server produced (by default whatever is queued)."""
        return self._decoder.feed(self.conn.data_to_send() if data is None else data)


def connected(store: SessionStore | None = None, connect: Connect = CONNECT) -> Peer:
    peer = Peer()
    peer.send(connect)
    request = peer.event()
    assert isinstance(request, ConnectRequested)
    if store is None:
        peer.wire(peer.conn.accept())
    else:
        session, present = store.attach(connect.client_id, connect.clean_session)
        peer.wire(peer.conn.accept(session, present))
    return peer


# -- handshake ------------------------------------------------------------------------------


def test_connect_is_reported_and_nothing_else_is_processed_until_accepted():
    peer = Peer()
    assert peer.conn.next_event() is NEED_DATA
    will = Will("devices/d1/messages/events/", b"gone", 1, False)
    peer.send(Connect("d1", False, 30, "user", b"pw", will), Pingreq())
    assert peer.event() == ConnectRequested("d1", "user", b"pw", False, 30, will)
    assert peer.conn.state is ConnectionState.AWAIT_ACCEPT
    assert peer.conn.next_event() is PAUSED
    assert peer.conn.data_to_send() == b""  # the pipelined PINGREQ waits (MQTT-3.1.4-5)
    assert peer.wire(peer.conn.accept()) == [Connack(False, 0)]
    assert peer.events() == []
    assert peer.wire() == [Pingresp()]
    assert peer.conn.state is ConnectionState.CONNECTED
    assert peer.conn.client_id == "d1"
    assert peer.conn.keepalive == 30


@pytest.mark.parametrize("code", [2, 3, 4, 5])
def test_refuse_sends_the_code_and_closes(code):
    peer = Peer()
    peer.send(CONNECT)
    peer.events()
    assert peer.wire(peer.conn.refuse(code)) == [Connack(False, code)]
    event = peer.event()
    assert event.reason is DisconnectReason.REFUSED
    assert event.will is None
    assert peer.conn.next_event() is event  # stays closed
    with pytest.raises(LocalProtocolError):
        peer.conn.publish("a", b"")


@pytest.mark.parametrize("code", [0, 1, 6, 0x80])
def test_refuse_never_sends_accepted_or_unacceptable_protocol(code):
    peer = Peer()
    peer.send(CONNECT)
    peer.events()
    with pytest.raises(LocalProtocolError):
        peer.conn.refuse(code)
    assert peer.conn.data_to_send() == b""


def test_accept_and_refuse_need_a_pending_connect():
    peer = Peer()
    with pytest.raises(LocalProtocolError):
        peer.conn.accept()
    peer = connected()
    with pytest.raises(LocalProtocolError):
        peer.conn.refuse(5)
    with pytest.raises(LocalProtocolError):
        peer.conn.accept()


def test_accept_checks_the_session_it_is_given():
    store = SessionStore()
    peer = Peer()
    peer.send(Connect("d1", clean_session=True))
    peer.events()
    other, _ = store.attach("d2", False)
    with pytest.raises(LocalProtocolError):
        peer.conn.accept(other)
    mine, _ = store.attach("d1", True)
    with pytest.raises(LocalProtocolError):
        peer.conn.accept(mine, session_present=True)  # MQTT-3.2.2-1


@pytest.mark.parametrize("first", [Pingreq(), Publish("a", b""), Subscribe(1, (("a", 1),))])
def test_first_packet_must_be_connect(first):
    peer = Peer()
    peer.send(first)
    event = peer.event()
    assert event.reason is DisconnectReason.PROTOCOL_ERROR
    assert "not CONNECT" in event.detail
    assert peer.conn.data_to_send() == b""


def test_mqtt_3_1_is_hung_up_on_without_connack_1():
    peer = Peer()
    peer.send(Connect("d1", protocol_name="MQIsdp", protocol_level=3))
    event = peer.event()
    assert event.reason is DisconnectReason.PROTOCOL_ERROR
    assert peer.conn.data_to_send() == b""


def test_empty_client_id_without_clean_session_is_rejected():
    peer = Peer()
    peer.send(Connect("", clean_session=False))
    assert peer.event().reason is DisconnectReason.REFUSED
    assert peer.wire() == [Connack(False, 2)]


def test_empty_client_id_with_clean_session_is_the_hubs_call():
    peer = Peer()
    peer.send(Connect("", clean_session=True))
    assert isinstance(peer.event(), ConnectRequested)


def test_second_connect_is_a_protocol_error():
    peer = connected()
    peer.send(CONNECT)
    event = peer.event()
    assert event.reason is DisconnectReason.PROTOCOL_ERROR
    assert event.detail == "second CONNECT"


def test_malformed_bytes_close_the_connection():
    peer = connected()
    peer.conn.receive_data(b"\xf0\x00", 1.0)
    assert peer.event().reason is DisconnectReason.PROTOCOL_ERROR


def test_flooding_before_connack_is_cut_off_after_the_verdict():
    peer = Peer()
    peer.send(CONNECT)
    peer.events()
    for _ in range(5):
        peer.conn.receive_data(b"\xc0\x00" * 100_000, 1.0)
    assert peer.conn.next_event() is PAUSED
    peer.conn.accept()
    assert peer.event().reason is DisconnectReason.PROTOCOL_ERROR


# -- routine traffic ------------------------------------------------------------------------


def test_ping():
    peer = connected()
    peer.send(Pingreq(), Pingreq())
    assert peer.events() == []
    assert peer.wire() == [Pingresp(), Pingresp()]


def test_subscribe_grants_qos1_at_most_and_rejects_bad_filters():
    peer = connected()
    peer.send(Subscribe(5, (("$iothub/twin/res/#", 1), ("a/#/b", 1), ("x", 0), ("y", 2))))
    assert peer.event() == Subscribed(5, ("$iothub/twin/res/#", "x", "y"), ("a/#/b",))
    assert peer.wire() == [Suback(5, (1, 0x80, 0, 1))]
    assert peer.conn.session.matches("$iothub/twin/res/200/?$rid=1")
    assert not peer.conn.session.matches("a/c/b")


def test_a_sixth_subscription_is_refused_gently():
    peer = connected()
    filters = [(f"t/{i}", 1) for i in range(6)]
    peer.send(Subscribe(1, tuple(filters[:5])), Subscribe(2, (filters[5], filters[0])))
    first, second = peer.events()
    assert first == Subscribed(1, tuple(f for f, _ in filters[:5]))
    assert second == Subscribed(2, ("t/0",), ("t/5",))
    assert peer.wire() == [Suback(1, (1,) * 5), Suback(2, (0x80, 1))]
    assert peer.conn.state is ConnectionState.CONNECTED


def test_unsubscribe():
    peer = connected()
    peer.send(Subscribe(1, (("a/+", 1), ("b", 1))), Unsubscribe(2, ("a/+", "never")))
    assert peer.events()[1] == Unsubscribed(2, ("a/+", "never"))
    assert peer.wire() == [Suback(1, (1, 1)), Unsuback(2)]
    assert set(peer.conn.session.subscriptions) == {"b"}


def test_client_qos1_publish_is_acked_only_when_the_hub_says_so():
    peer = connected()
    peer.send(Publish("$iothub/twin/GET/?$rid=1", b" ", 1, packet_id=9))
    event = peer.event()
    assert event == Published("$iothub/twin/GET/?$rid=1", b" ", 1, False, 9)
    assert event.needs_ack
    assert peer.conn.data_to_send() == b""
    assert peer.wire(peer.conn.ack(9)) == [Puback(9)]
    assert peer.conn.ack(9) == b""  # a second ack is a no-op


def test_client_qos0_publish_needs_no_ack():
    peer = connected()
    peer.send(Publish("devices/d1/messages/events/", b"x", 0, retain=True))
    event = peer.event()
    assert event == Published("devices/d1/messages/events/", b"x", 0, retain=True)
    assert not event.needs_ack


@pytest.mark.parametrize("packet", [Publish("a", b"", 2, packet_id=1), Pubrel(1)])
def test_qos2_closes_the_connection(packet):
    peer = connected()
    peer.send(packet)
    event = peer.event()
    assert event.reason is DisconnectReason.PROTOCOL_ERROR
    assert peer.conn.data_to_send() == b""


@pytest.mark.parametrize("packet", [Connack(False, 0), Suback(1, (1,)), Unsuback(1), Pingresp()])
def test_server_only_packets_from_a_client_are_violations(packet):
    peer = connected()
    peer.send(packet)
    assert peer.event().reason is DisconnectReason.PROTOCOL_ERROR


def test_server_publish_qos1_stays_in_flight_until_puback():
    peer = connected()
    sent = peer.wire(peer.conn.publish("$iothub/methods/POST/m/?$rid=1", b"{}", qos=1))
    assert sent == [Publish("$iothub/methods/POST/m/?$rid=1", b"{}", 1, packet_id=1)]
    assert peer.wire(peer.conn.publish("t", b"x", qos=1))[0].packet_id == 2
    assert peer.wire(peer.conn.publish("t", b"y")) == [Publish("t", b"y")]
    assert [p.packet_id for p in peer.conn.session.in_flight] == [1, 2]
    peer.send(Puback(1), Puback(1), Puback(99))
    assert peer.events() == [PubAcked(1, "$iothub/methods/POST/m/?$rid=1")]
    assert [p.packet_id for p in peer.conn.session.in_flight] == [2]


@pytest.mark.parametrize(("topic", "qos"), [("a/+", 0), ("", 0), ("a", 2), ("a", 3), ("a\x00", 1)])
def test_publish_rejects_what_iot_hub_never_sends(topic, qos):
    peer = connected()
    with pytest.raises(LocalProtocolError):
        peer.conn.publish(topic, b"", qos)


def test_publish_before_accept_is_a_local_error():
    peer = Peer()
    with pytest.raises(LocalProtocolError):
        peer.conn.publish("a", b"")
    peer.send(CONNECT)
    peer.events()
    with pytest.raises(LocalProtocolError):
        peer.conn.publish("a", b"")


def test_output_keeps_stream_order():
    peer = connected()
    peer.send(Subscribe(3, (("a/#", 1),)), Pingreq())
    peer.events()
    # The automatic SUBACK and PINGRESP come out before the PUBLISH that follows them.
    assert peer.wire(peer.conn.publish("a/b", b"1", 1)) == [
        Suback(3, (1,)),
        Pingresp(),
        Publish("a/b", b"1", 1, packet_id=1),
    ]


# -- ending ---------------------------------------------------------------------------------


def test_clean_disconnect_discards_the_will():
    peer = connected(connect=Connect("d1", will=Will("w", b"x")))
    peer.send(Disconnect(), Pingreq())
    event = peer.event()
    assert event == Disconnected(DisconnectReason.CLIENT_DISCONNECT)
    assert event.graceful
    assert peer.conn.data_to_send() == b""  # nothing after DISCONNECT is processed


def test_eof_reports_the_will():
    will = Will("devices/d1/messages/events/", b"bye", 1, False)
    peer = connected(connect=Connect("d1", will=will))
    peer.conn.receive_data(b"", 5.0)
    event = peer.event()
    assert event.reason is DisconnectReason.CONNECTION_LOST
    assert event.will == will
    assert not event.graceful
    with pytest.raises(LocalProtocolError):
        peer.conn.receive_data(b"x", 6.0)


def test_eof_while_the_hub_authenticates_is_reported_after_the_verdict():
    peer = Peer()
    peer.send(CONNECT)
    peer.events()
    peer.conn.receive_data(b"", 1.0)
    assert peer.conn.next_event() is PAUSED
    peer.conn.accept()
    assert peer.event().reason is DisconnectReason.CONNECTION_LOST


def test_eof_mid_packet():
    peer = connected()
    peer.conn.receive_data(encode(Publish("a", b"xyz"))[:3], 1.0)
    assert peer.events() == []
    peer.conn.receive_data(b"", 2.0)
    assert "middle of a packet" in peer.event().detail


def test_server_close():
    peer = connected(connect=Connect("d1", will=Will("w", b"x")))
    peer.conn.close("identity deleted")
    event = peer.event()
    assert (event.reason, event.detail, event.will) == (
        DisconnectReason.SERVER_CLOSED,
        "identity deleted",
        Will("w", b"x"),
    )
    peer.conn.close("again")
    assert peer.conn.next_event() is event


# -- time -----------------------------------------------------------------------------------


def test_keepalive_timeout_after_one_and_a_half_periods_of_silence():
    peer = connected()  # keepalive 10, last byte at t=0
    assert peer.conn.next_deadline() == 15.0
    assert not peer.conn.check_timeout(15.0)
    peer.send(Pingreq(), now=12.0)
    peer.events()
    assert peer.conn.next_deadline() == 27.0
    assert not peer.conn.check_timeout(20.0)
    assert peer.conn.check_timeout(27.5)
    event = peer.event()
    assert event.reason is DisconnectReason.KEEPALIVE_TIMEOUT
    assert not peer.conn.check_timeout(100.0)  # already closed
    assert peer.conn.next_deadline() is None


def test_any_byte_counts_as_activity():
    peer = connected()
    data = encode(Publish("a", b"x" * 100))
    peer.conn.receive_data(data[:2], 14.0)  # half a packet still proves the client is alive
    assert not peer.conn.check_timeout(20.0)
    assert peer.conn.check_timeout(29.1)


def test_keepalive_zero_never_times_out():
    peer = connected(connect=Connect("d1", keepalive=0))
    assert peer.conn.next_deadline() is None
    assert not peer.conn.check_timeout(1e9)


def test_a_socket_that_never_sends_connect_times_out():
    conn = ServerConnection(100.0, connect_timeout=5.0)
    assert conn.next_deadline() == 105.0
    assert not conn.check_timeout(105.0)
    assert conn.check_timeout(105.5)
    assert conn.next_event().reason is DisconnectReason.CONNECT_TIMEOUT


def test_no_timeout_while_the_hub_authenticates():
    peer = Peer()
    peer.send(CONNECT)
    peer.events()
    assert peer.conn.next_deadline() is None
    assert not peer.conn.check_timeout(1e6)


# -- sessions across connections ------------------------------------------------------------


def test_session_resume_keeps_subscriptions_and_redelivers_with_dup():
    store = SessionStore()
    first = connected(store)
    first.send(Subscribe(1, (("$iothub/twin/res/#", 1),)))
    first.events()
    first.wire()
    first.wire(first.conn.publish("$iothub/twin/res/200/?$rid=a", b"{}", 1))
    first.wire(first.conn.publish("$iothub/twin/res/200/?$rid=b", b"{}", 1))
    first.send(Puback(1))
    assert first.events() == [PubAcked(1, "$iothub/twin/res/200/?$rid=a")]
    first.conn.receive_data(b"", 1.0)
    assert first.event().reason is DisconnectReason.CONNECTION_LOST
    store.release(first.conn.session)

    # SAS renewal: reconnect with clean session 0, no SUBSCRIBE follows (A.3, A.5).
    second = Peer()
    second.send(CONNECT)
    second.events()
    session, present = store.attach("d1/m1", False)
    assert present
    assert session is first.conn.session
    assert session.matches("$iothub/twin/res/200/?$rid=c")
    assert second.wire(second.conn.accept(session, present)) == [
        Connack(True, 0),
        Publish("$iothub/twin/res/200/?$rid=b", b"{}", 1, dup=True, packet_id=2),
    ]
    second.send(Puback(2))
    assert second.events() == [PubAcked(2, "$iothub/twin/res/200/?$rid=b")]
    assert session.in_flight == ()
    # New ids continue after the ones the session used.
    assert second.wire(second.conn.publish("x", b"", 1))[0].packet_id == 3


def test_clean_session_starts_afresh_and_ends_with_the_connection():
    store = SessionStore()
    old = connected(store)
    old.send(Subscribe(1, (("a", 1),)))
    old.events()
    old.conn.receive_data(b"", 1.0)
    old.events()
    peer = connected(store, Connect("d1/m1", clean_session=True))
    assert peer.conn.session.subscriptions == {}
    assert not peer.conn.session.matches("a")
    peer.conn.receive_data(b"", 2.0)
    peer.events()
    store.release(peer.conn.session)
    assert "d1/m1" not in store


def test_a_newer_connection_takes_the_session_over():
    store = SessionStore()
    old = connected(store)
    new = connected(store)
    assert new.conn.session.owner is new.conn
    with pytest.raises(LocalProtocolError):
        old.conn.publish("a", b"")
    event = old.event()
    assert (event.reason, event.detail) == (DisconnectReason.SERVER_CLOSED, "session taken over")
    # The old connection closing does not unbind the new one.
    assert new.conn.session.owner is new.conn
    new.send(Pingreq())
    assert new.events() == []


def test_discarding_a_session_drops_its_connection():
    store = SessionStore()
    peer = connected(store)
    store.discard("d1/m1")
    assert peer.event().reason is DisconnectReason.SERVER_CLOSED


# -- duplicates of client QoS 1 messages (A.6, A.12) ----------------------------------------


def _publish(packet_id: int, dup: bool) -> Publish:
    return Publish("$iothub/twin/GET/?$rid=r", b" ", 1, dup=dup, packet_id=packet_id)


@pytest.mark.parametrize("hub_acks", ["before the drop", "while offline", "after the reconnect"])
def test_a_message_re_sent_on_a_new_connection_is_a_new_message(hub_acks):
    """Acked or not, an id from an earlier connection says nothing: paho numbers from 1
    again, so the hub takes the message (MQTT-4.3.2-5) and acks it on this connection."""
    store = SessionStore()
    first = connected(store)
    first.send(_publish(7, False))
    first.events()
    if hub_acks == "before the drop":
        first.conn.ack(7)  # the PUBACK is lost with the connection
    first.conn.receive_data(b"", 1.0)
    first.events()
    if hub_acks == "while offline":
        assert first.conn.ack(7) == b""
    second = connected(store)
    second.send(_publish(7, True))  # paho re-sends un-acked messages with DUP (A.12)
    [again] = second.events()
    assert again == Published("$iothub/twin/GET/?$rid=r", b" ", 1, True, 7)
    assert again.needs_ack
    assert second.conn.data_to_send() == b""  # acked only once the hub has taken it
    if hub_acks == "after the reconnect":
        assert first.conn.ack(7) == b""  # the late ack goes nowhere and breaks nothing
        assert second.conn.data_to_send() == b""
    assert second.wire(second.conn.ack(7)) == [Puback(7)]
    second.send(_publish(7, True))  # acked, so free: a new message (MQTT-4.3.2-5)
    assert len(second.events()) == 1


def test_duplicate_on_the_same_connection_waits_for_the_one_ack():
    peer = connected()
    peer.send(_publish(3, False), _publish(3, True))
    assert len(peer.events()) == 1
    assert peer.conn.data_to_send() == b""
    assert peer.wire(peer.conn.ack(3)) == [Puback(3)]


def test_dup_flag_with_an_unknown_id_is_a_new_message():
    peer = connected()
    peer.send(_publish(4, True))
    assert peer.event() == Published("$iothub/twin/GET/?$rid=r", b" ", 1, True, 4)


def test_reused_id_without_dup_is_a_new_message():
    peer = connected()
    peer.send(_publish(5, False))
    peer.events()
    peer.conn.ack(5)
    peer.send(_publish(5, False))
    assert isinstance(peer.event(), Published)
