"""Server side of one MQTT 3.1.1 network connection, as a sans-I/O state machine.

Usage from a shell that owns the socket (time is always passed in, nothing here reads a clock):

    conn = ServerConnection(now)
    conn.receive_data(chunk, now)            # b"" signals EOF
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            break
        ...                                  # ConnectRequested -> conn.accept()/refuse()
        if isinstance(event, Disconnected):  # Published (QoS 1) -> conn.ack(packet_id)
            break
    transport.write(conn.data_to_send())

Every method that produces output returns *all* pending output in stream order, automatic
replies (SUBACK, UNSUBACK, PINGRESP) included, so writing whatever a call returns, immediately,
keeps the byte stream ordered. `data_to_send()` drains what next_event() queued.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum

from twin_explorer.connection.redact import clip

from .codec import DEFAULT_MAX_PACKET_SIZE, Decoder, encode
from .errors import LocalProtocolError, MqttProtocolError
from .events import (
    NEED_DATA,
    PAUSED,
    ConnectRequested,
    Disconnected,
    DisconnectReason,
    Event,
    PubAcked,
    Published,
    Subscribed,
    Unsubscribed,
)
from .packets import (
    PROTOCOL_LEVEL,
    PROTOCOL_NAME,
    SUBACK_FAILURE,
    Connack,
    ConnackCode,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from .session import Session
from .topics import is_valid_topic_name

# How long a fresh socket may stay silent before its CONNECT (the SDK sends it at once).
DEFAULT_CONNECT_TIMEOUT = 30.0
KEEPALIVE_GRACE = 1.5  # IoT Hub drops clients silent for 1.5 x keep-alive (A.12)


def _any_filter(topic_filter: str) -> bool:
    return True


class ConnectionState(Enum):
    AWAIT_CONNECT = "await CONNECT"
    AWAIT_ACCEPT = "CONNECT received, await accept() or refuse()"
    CONNECTED = "connected"
    CLOSED = "closed"


class ServerConnection:
    def __init__(
        self,
        now: float,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self._decoder = Decoder(max_packet_size)
        self._connect_timeout = connect_timeout
        self._opened_at = now
        self._last_received = now
        self._state = ConnectionState.AWAIT_CONNECT
        self._eof = False
        self._overflow = False
        self._out = bytearray()
        self._connect: Connect | None = None
        self._session: Session | None = None
        self._may_subscribe: Callable[[str], bool] = _any_filter
        self._unacked_inbound: set[int] = set()  # client QoS 1 ids handed out, not yet ack()ed
        self._closed: Disconnected | None = None

    def __repr__(self) -> str:
        client = self._connect.client_id if self._connect else None
        return f"<ServerConnection {client!r} {self._state.name}>"

    # -- inspection ---------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def client_id(self) -> str | None:
        return self._connect.client_id if self._connect else None

    @property
    def keepalive(self) -> int | None:
        return self._connect.keepalive if self._connect else None

    @property
    def session(self) -> Session | None:
        return self._session

    def next_deadline(self) -> float | None:
        """When check_timeout() would next close the connection, or None for never."""
        if self._state is ConnectionState.AWAIT_CONNECT:
            return self._opened_at + self._connect_timeout
        if self._state is ConnectionState.CONNECTED and self._connect and self._connect.keepalive:
            return self._last_received + KEEPALIVE_GRACE * self._connect.keepalive
        return None

    # -- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket (b"" = EOF). Any byte counts as keep-alive activity."""
        if self._eof:
            raise LocalProtocolError("receive_data() after EOF")
        if not data:
            self._eof = True
            return
        if self._state is ConnectionState.CLOSED or self._overflow:
            return
        self._last_received = now
        self._decoder.append(data)
        if (
            self._state is ConnectionState.AWAIT_ACCEPT
            and self._decoder.buffered > self._decoder.max_packet_size
        ):
            # The client may pipeline packets after CONNECT, but not without bound; the
            # verdict waits until accept()/refuse() so those never meet a closed connection.
            self._overflow = True

    def check_timeout(self, now: float) -> bool:
        """Close the connection if it has been silent too long; True if that just happened."""
        deadline = self.next_deadline()
        if deadline is None or now <= deadline:
            return False
        if self._state is ConnectionState.AWAIT_CONNECT:
            self._close(DisconnectReason.CONNECT_TIMEOUT, f"no CONNECT in {self._connect_timeout}s")
        else:
            silent = now - self._last_received
            self._close(DisconnectReason.KEEPALIVE_TIMEOUT, f"silent for {silent:.1f}s")
        return True

    def next_event(self) -> Event | object:
        """The next event, NEED_DATA, or PAUSED (a CONNECT awaits accept()/refuse()).

        Once closed, every call returns the same Disconnected event.
        """
        while True:
            if self._closed is not None:
                return self._closed
            if self._state is ConnectionState.AWAIT_ACCEPT:
                return PAUSED
            if self._state is ConnectionState.CONNECTED and self._session_lost():
                return self._close(DisconnectReason.SERVER_CLOSED, "session taken over")
            if self._overflow:
                return self._close(DisconnectReason.PROTOCOL_ERROR, "too much data before CONNACK")
            try:
                packet = self._decoder.next_packet()
            except MqttProtocolError as exc:
                return self._close(DisconnectReason.PROTOCOL_ERROR, exc.reason)
            if packet is None:
                if self._eof:
                    partial = " in the middle of a packet" if self._decoder.buffered else ""
                    return self._close(DisconnectReason.CONNECTION_LOST, f"EOF{partial}")
                return NEED_DATA
            if self._state is ConnectionState.AWAIT_CONNECT:
                event = self._handle_connect(packet)
            else:
                event = self._handle_packet(packet)
            if event is not None:
                return event

    # -- output -------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def accept(
        self,
        session: Session | None = None,
        session_present: bool = False,
        *,
        may_subscribe: Callable[[str], bool] | None = None,
    ) -> bytes:
        """CONNACK 0, then every un-acked QoS 1 message of a resumed session (with DUP).

        `session` normally comes from `SessionStore.attach()`; without one the connection
        gets a private session that ends with it. Topic filters `may_subscribe` turns down
        get SUBACK 0x80 (without it, every valid filter is granted).
        """
        connect = self._require_connect_pending()
        if session is None:
            session = Session(connect.client_id, clean=True)
        if session.client_id != connect.client_id:
            raise LocalProtocolError(f"session of {session.client_id!r} for {connect.client_id!r}")
        if session_present and connect.clean_session:
            raise LocalProtocolError("clean session 1 is never answered with a session")
        session.owner = self
        self._session = session
        if may_subscribe is not None:
            self._may_subscribe = may_subscribe
        self._state = ConnectionState.CONNECTED
        self._send(Connack(session_present, ConnackCode.ACCEPTED))
        for publish in session.in_flight:
            self._send(dataclasses.replace(publish, dup=True))  # MQTT-4.4.0-1
        return self.data_to_send()

    def refuse(self, return_code: int) -> bytes:
        """CONNACK with a failure code (2-5), after which the connection is closed.

        Code 1 is not allowed: paho then silently retries as MQTT 3.1 (reference A.4). Use 5
        (or 4) for authentication failures so the SDK stops reconnecting.
        """
        self._require_connect_pending()
        if return_code not in range(2, 6):
            raise LocalProtocolError(f"refuse() needs a return code 2-5, not {return_code}")
        self._send(Connack(False, return_code))
        self._close(DisconnectReason.REFUSED, f"CONNACK {ConnackCode(return_code).name}")
        return self.data_to_send()

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bytes:
        """Send a PUBLISH; QoS 1 messages stay in the session until the client's PUBACK."""
        session = self._require_connected()
        if qos not in (0, 1):
            raise LocalProtocolError("IoT Hub publishes at QoS 0 or 1 only")
        if not is_valid_topic_name(topic):
            raise LocalProtocolError(f"invalid topic name {topic!r}")
        if qos == 0:
            packet = Publish(topic, bytes(payload), 0, retain)
        else:
            packet = Publish(topic, bytes(payload), 1, retain, False, session.allocate_packet_id())
            session.track_outbound(packet)
        self._send(packet)
        return self.data_to_send()

    def ack(self, packet_id: int) -> bytes:
        """PUBACK a client QoS 1 message once the hub has taken it (IoT Hub acks after
        processing). The id is free from then on (MQTT-4.3.2-5). After the connection ended
        this does nothing: the client re-sends the message on its next connection, and the
        hub takes it again (QoS 1 may duplicate, never drop).
        """
        if self._state is ConnectionState.CONNECTED and self._session_lost():
            self._close(DisconnectReason.SERVER_CLOSED, "session taken over")
        if packet_id in self._unacked_inbound:
            self._unacked_inbound.discard(packet_id)
            if self._state is ConnectionState.CONNECTED:
                self._send(Puback(packet_id))
        return self.data_to_send() if self._state is ConnectionState.CONNECTED else b""

    def close(self, detail: str = "") -> None:
        """Server-side close (e.g. a newer connection took over the identity)."""
        if self._closed is None:
            self._close(DisconnectReason.SERVER_CLOSED, detail)

    # -- internals ----------------------------------------------------------------------------

    def _send(self, packet: Packet) -> None:
        self._out += encode(packet)

    def _session_lost(self) -> bool:
        return self._session is None or self._session.owner is not self

    def _require_connect_pending(self) -> Connect:
        if self._state is not ConnectionState.AWAIT_ACCEPT or self._connect is None:
            raise LocalProtocolError(f"no CONNECT awaits an answer ({self._state.value})")
        return self._connect

    def _require_connected(self) -> Session:
        if self._state is ConnectionState.CONNECTED and self._session_lost():
            self._close(DisconnectReason.SERVER_CLOSED, "session taken over")
        if self._state is not ConnectionState.CONNECTED or self._session is None:
            raise LocalProtocolError(f"connection is not open ({self._state.value})")
        return self._session

    def _close(self, reason: DisconnectReason, detail: str) -> Disconnected:
        # A will is published only for an accepted connection that did not end with
        # DISCONNECT (MQTT-3.1.2-8, -10).
        will = None
        if (
            self._state is ConnectionState.CONNECTED
            and reason is not DisconnectReason.CLIENT_DISCONNECT
        ):
            will = self._connect.will if self._connect else None
        self._state = ConnectionState.CLOSED
        if self._session is not None and self._session.owner is self:
            self._session.owner = None
        self._closed = Disconnected(reason, detail, will)
        return self._closed

    def _protocol_error(self, detail: str) -> Disconnected:
        return self._close(DisconnectReason.PROTOCOL_ERROR, detail)

    def _handle_connect(self, packet: Packet) -> Event:
        if not isinstance(packet, Connect):
            return self._protocol_error(f"first packet is {type(packet).__name__}, not CONNECT")
        if (packet.protocol_name, packet.protocol_level) != (PROTOCOL_NAME, PROTOCOL_LEVEL):
            # MQTT would answer CONNACK 1, which makes paho downgrade and retry (A.4):
            # IoT Hub only speaks 3.1.1, so just hang up.
            return self._protocol_error(
                f"unsupported protocol {clip(packet.protocol_name)!r} level {packet.protocol_level}"
            )
        if not packet.client_id and not packet.clean_session:
            self._send(Connack(False, ConnackCode.IDENTIFIER_REJECTED))  # MQTT-3.1.3-8
            return self._close(DisconnectReason.REFUSED, "empty client id needs clean session")
        self._connect = packet
        self._state = ConnectionState.AWAIT_ACCEPT
        return ConnectRequested(
            client_id=packet.client_id,
            username=packet.username,
            password=packet.password,
            clean_session=packet.clean_session,
            keepalive=packet.keepalive,
            will=packet.will,
        )

    def _handle_packet(self, packet: Packet) -> Event | None:
        session = self._session
        assert session is not None
        match packet:
            case Publish():
                return self._handle_publish(packet)
            case Puback(packet_id=packet_id):
                # An unknown id is a late duplicate of an ack; nothing to do.
                done = session.complete_outbound(packet_id)
                return PubAcked(packet_id, done.topic) if done else None
            case Subscribe(packet_id=packet_id, topics=topics):
                codes = tuple(
                    session.subscribe(f, qos) if self._may_subscribe(f) else SUBACK_FAILURE
                    for f, qos in topics
                )
                self._send(Suback(packet_id, codes))
                outcome = list(zip((f for f, _ in topics), codes, strict=True))
                return Subscribed(
                    packet_id,
                    tuple(f for f, code in outcome if code != SUBACK_FAILURE),
                    tuple(f for f, code in outcome if code == SUBACK_FAILURE),
                )
            case Unsubscribe(packet_id=packet_id, topics=topics):
                for topic_filter in topics:
                    session.unsubscribe(topic_filter)
                self._send(Unsuback(packet_id))
                return Unsubscribed(packet_id, topics)
            case Pingreq():
                self._send(Pingresp())
                return None
            case Disconnect():
                return self._close(DisconnectReason.CLIENT_DISCONNECT, "")
            case Connect():
                return self._protocol_error("second CONNECT")  # MQTT-3.1.0-2
            case _:
                # CONNACK/SUBACK/... are server-to-client only; PUBREC/PUBREL/PUBCOMP belong
                # to QoS 2, which neither side uses here.
                return self._protocol_error(f"unexpected {type(packet).__name__} from a client")

    def _handle_publish(self, packet: Publish) -> Event | None:
        if packet.qos == 2:
            return self._protocol_error("QoS 2 PUBLISH (IoT Hub closes the connection, C.6)")
        event = Published(
            packet.topic, packet.payload, packet.qos, packet.dup, packet.packet_id, packet.retain
        )
        if packet.qos == 0:
            return event
        packet_id = packet.packet_id
        assert packet_id is not None
        if packet.dup and packet_id in self._unacked_inbound:
            # A copy re-sent on this very connection while the hub's ack for it is still
            # due: the client cannot have reused the id yet, so it is the same message.
            return None
        # Anything else is a new message, also an id (and DUP) seen on an earlier
        # connection: that id was acknowledged or its connection is gone (MQTT-4.3.2-5).
        self._unacked_inbound.add(packet_id)
        return event
