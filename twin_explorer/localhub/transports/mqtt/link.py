"""One device connection: moves bytes between a TLS stream and a sans-I/O ``ServerConnection``.

A :class:`DeviceLink` runs as one task. It reads, feeds the state machine, maps each event
to a core call (CONNECT: authenticate and join presence; twin requests, telemetry and
method responses: the core's device operations) and the core's deliveries (method
requests, desired patches, C2D messages, close) to PUBLISH packets, and writes whatever
the state machine produced, in order. It is the core's :class:`DeliveryTarget` for its
identity. Telemetry is PUBACKed only once the event log has written it (group commit);
a C2D message is completed by the client's PUBACK.

Memory stays bounded per connection: reading pauses while the socket's send buffer is
above its high-water mark (so a client that asks without reading is simply not read), and
messages the hub pushes on its own (desired patches, method requests) may not grow that
buffer past ``max_outbound`` bytes: a client that slow is dropped, with a log line saying so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.core.device_ops import Reply, encode_json
from twin_explorer.localhub.core.identity import MAX_ID_LENGTH
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.protocols.mqtt import (
    NEED_DATA,
    PAUSED,
    ConnectionState,
    ConnectRequested,
    Disconnected,
    LocalProtocolError,
    PubAcked,
    Published,
    ServerConnection,
    Subscribed,
    Unsubscribed,
)
from twin_explorer.localhub.protocols.mqtt.iothub_topics import (
    MethodResponse,
    ReportedPatch,
    Telemetry,
    TopicError,
    TwinGet,
    c2d_topic,
    desired_patch_topic,
    may_subscribe,
    method_request_topic,
    parse_device_publish,
    twin_response_topic,
)
from twin_explorer.twin.identity import identity_path

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.c2d import C2DMessage
    from twin_explorer.localhub.core.hub import HubCore
    from twin_explorer.localhub.transports.mqtt.sessions import MqttSessions

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
# Reading pauses above this much unsent data (backpressure on request/response traffic).
HIGH_WATER = 256 * 1024
# Hub-initiated messages may not push unsent data beyond this; the client is dropped then.
MAX_OUTBOUND = 4 * 1024 * 1024
# A client may leave this many of our QoS 1 messages unacknowledged (the SDK acks at once).
MAX_IN_FLIGHT = 1000
WRITE_TIMEOUT = 60.0
# One read can hold thousands of small requests (64 KiB of twin GETs is 2000): handle
# this many, then let the loop serve everyone else, so a client's flood costs the others
# short turns, not a whole read's worth of work per turn.
EVENTS_PER_TURN = 64
# IoT Hub publishes twin responses and desired patches at QoS 0 (the Azure SDK for C
# documents "Twin MQTT Publish messages will have QoS At most once"). QoS 1 would also
# cost every SDK client ~40 ms per twin operation: paho leaves Nagle on, so its PUBACK
# holds back its next request until our delayed ACK (measured: get_twin 45 ms vs 2 ms).
TWIN_QOS = 0
CONNACK_IDENTIFIER_REJECTED = 2
CONNACK_SERVER_UNAVAILABLE = 3
CONNACK_NOT_AUTHORIZED = 5
# A client id is '<deviceId>' or '<deviceId>/<moduleId>', each id at most 128 characters
# (C.6; IoT Hub documents deviceId and moduleId as "up to 128 characters long").
MAX_CLIENT_ID = 2 * MAX_ID_LENGTH + 1
# Any topic the methods filter covers: "is this client subscribed to method requests?"
_METHOD_PROBE = method_request_topic("probe", "0")


class DeviceLink:
    """A device or module connection, from TLS accept to close."""

    def __init__(
        self,
        core: HubCore,
        sessions: MqttSessions,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        clock: Callable[[], float],
        *,
        settled: Callable[[], None] = lambda: None,
        max_outbound: int = MAX_OUTBOUND,
        write_timeout: float = WRITE_TIMEOUT,
        via: str = "mqtts",
    ) -> None:
        self._core = core
        self.via = via  # "mqtts" (TLS) or "wss" (a WebSocket): for logs
        self._sessions = sessions
        self._settled = settled  # the listener's gate: MQTT keep-alive rules from here on
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._reader = reader
        self._writer = writer
        self._clock = clock
        self._max_outbound = max_outbound
        self._write_timeout = write_timeout
        self.conn = ServerConnection(clock())
        self.identity: Identity | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.close_reason: str | None = None
        # Client packet ids to PUBACK once the event log commits (see _release_acks).
        self._held_acks: list[int] = []
        self._awaiting_commit = False
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)

    def __repr__(self) -> str:
        return f"<DeviceLink {self.name} {self.conn.state.name}>"

    @property
    def name(self) -> str:
        """Who this is for logs: the authenticated client id, else the peer address."""
        return self.identity.client_id if self.identity else f"connection from {self.peer}"

    @property
    def connected(self) -> bool:
        return self.close_reason is None and self.conn.state is ConnectionState.CONNECTED

    # -- the task -----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._serve()
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            self._note_close(f"socket error: {exc!r}")
        except asyncio.CancelledError:
            self._note_close("hub closing")
            raise
        except Exception:
            logger.exception("%s failed; closing it", self.name)
            self._note_close("internal error")
        finally:
            if self.conn.state is not ConnectionState.CLOSED:
                self.conn.close(self.close_reason or "")
            self._closed()
            self._shut(abort=self.close_reason == "hub closing")

    async def _serve(self) -> None:
        while True:
            data = await self._reader.read(READ_CHUNK)
            self.conn.receive_data(data, self._clock())
            if not await self._handle_events() or not data:
                return

    async def _handle_events(self) -> bool:
        """Handle every complete packet; False once the connection is over."""
        handled = 0
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                # Packets that make no event still get answers (PINGRESP above all): an
                # idle client that hears nothing back drops its connection.
                self.send(self.conn.data_to_send())
                return True
            if event is PAUSED:  # CONNECT is always answered at once, so never here
                raise RuntimeError("connection paused on an unanswered CONNECT")
            if isinstance(event, Disconnected):
                self.send(self.conn.data_to_send())  # e.g. a refusing CONNACK
                detail = f": {event.detail}" if event.detail else ""
                self._note_close(f"{event.reason.value}{detail}")
                return False
            self._dispatch(event)
            self.send(self.conn.data_to_send())
            if self.close_reason is not None:
                return False
            if self._writer.transport.get_write_buffer_size() > HIGH_WATER:
                await self._drain()
            handled += 1
            if handled % EVENTS_PER_TURN == 0:
                await asyncio.sleep(0)  # the other connections' turn

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await self._writer.drain()
        except TimeoutError:
            self.close(f"the client read nothing for {self._write_timeout:g}s", abort=True)

    def _dispatch(self, event: object) -> None:
        match event:
            case ConnectRequested():
                self._admit(event)
            case Published():
                self._on_publish(event)
            case Subscribed(filters=filters, rejected=rejected):
                logger.debug(
                    "%s subscribed to %s (rejected %s)",
                    self.name,
                    filters,
                    [clip(f) for f in rejected],
                )
                self._sessions.save()
                if self.identity is not None and filters:
                    # Method calls and C2D messages may now go to this connection.
                    self._core.presence.ready(self.identity)
            case Unsubscribed(filters=filters):
                logger.debug("%s unsubscribed from %s", self.name, filters)
                self._sessions.save()
            case PubAcked(packet_id=packet_id, topic=topic):
                logger.debug("%s acknowledged %d (%s)", self.name, packet_id, topic)
                identity = self.identity
                if identity is not None:
                    lock_token = self._sessions.c2d_acked(identity.client_id, packet_id)
                    if lock_token is not None:  # a C2D message: completed on PUBACK
                        self._core.complete_c2d(identity.device_id, lock_token)

    # -- device requests ----------------------------------------------------------------

    def _on_publish(self, event: Published) -> None:
        identity = self.identity
        assert identity is not None  # the state machine reports PUBLISH only once accepted
        logger.debug(
            "%s published %s (%d bytes, QoS %d%s)",
            self.name,
            clip(event.topic),
            len(event.payload),
            event.qos,
            ", dup" if event.dup else "",
        )
        try:
            request = parse_device_publish(event.topic, event.payload)
        except TopicError as exc:
            # IoT Hub disconnects a client that publishes where it may not (C.6).
            self.close(f"{exc}")
            return
        # Every message is taken, also one re-sent after a reconnect: the hub cannot tell a
        # copy from a new message by its packet id (MQTT-4.3.2-5); the core's device
        # operations answer re-sent requests once (see core/device_ops.py).
        devices = self._core.devices
        match request:
            case TwinGet(rid=rid):
                self._reply(rid, devices.twin_get(identity, rid))
            case ReportedPatch(rid=rid, body=body):
                self._reply(rid, devices.reported_patch(identity, rid, body))
            case MethodResponse(rid=rid, status=status, body=body):
                devices.method_response(identity, rid, status, body)
            case Telemetry():
                if (request.device_id, request.module_id) != (
                    identity.device_id,
                    identity.module_id,
                ):
                    sender = clip(identity_path(request.device_id, request.module_id))
                    self.close(f"telemetry sent as {sender}")
                    return
                devices.telemetry(
                    identity,
                    request.properties,
                    request.system_properties,
                    request.body,
                    request.output_name,
                )
        devices.activity(identity)
        if event.needs_ack and event.packet_id is not None:
            self._ack(event.packet_id, written_first=isinstance(request, Telemetry))

    def _ack(self, packet_id: int, *, written_first: bool) -> None:
        """PUBACK a message; telemetry only once the event log has written it (group
        commit), and every PUBACK in the order the PUBLISHes came (MQTT-4.6.0-2)."""
        if not written_first and not self._awaiting_commit:
            self.send(self.conn.ack(packet_id))
            return
        self._held_acks.append(packet_id)
        if not self._awaiting_commit:
            self._awaiting_commit = True
            self._core.devices.after_commit(self._release_acks)

    def _release_acks(self, written: bool) -> None:
        """The event log wrote what this connection sent: PUBACK it, in order."""
        self._awaiting_commit = False
        held, self._held_acks = self._held_acks, []
        if not written:
            # Unacknowledged, the messages come again on the client's next connection.
            self.close("the hub could not write its messages (disk full)", abort=True)
            return
        self.send(b"".join(self.conn.ack(packet_id) for packet_id in held))

    def _reply(self, rid: str, reply: Reply) -> None:
        # Sent even without a subscription to $iothub/twin/res/#: the SDK may ask before
        # it subscribes (A.8). QoS 0 like every twin message of IoT Hub (see TWIN_QOS).
        topic = twin_response_topic(reply.status, rid, reply.version)
        self.publish(topic, reply.payload, TWIN_QOS)

    # -- connecting and closing, with the core ------------------------------------------

    def _admit(self, event: ConnectRequested) -> None:
        """Answer a CONNECT: authenticate, take the identity over, attach its session."""
        client_id = event.client_id
        if len(client_id) > MAX_CLIENT_ID:
            # Refused before any other work: no identity can have such an id. CONNACK 2
            # (identifier rejected) also stops the SDK's reconnect loop (A.4).
            logger.info(
                "refused %r from %s: a client id of %d characters (ids are at most %d)",
                clip(client_id),
                self.peer,
                len(client_id),
                MAX_ID_LENGTH,
            )
            self.send(self.conn.refuse(CONNACK_IDENTIFIER_REJECTED))
            return
        password = None if event.password is None else event.password.decode("utf-8", "replace")
        try:
            identity = self._core.authenticate_device(
                client_id,
                event.username,
                password,
                self._writer.get_extra_info("peer_certificates") or (),
            )
        except HubError as error:
            # The reason can quote the token's resource or policy name: client text too.
            logger.info("refused %r from %s: %s", client_id, self.peer, clip(error.message, 512))
            self.send(self.conn.refuse(CONNACK_NOT_AUTHORIZED))
            return
        except Exception:
            logger.exception("authenticating %r failed", client_id)
            self.send(self.conn.refuse(CONNACK_SERVER_UNAVAILABLE))
            return
        older = self._core.presence.target(identity.client_id)
        if isinstance(older, DeviceLink) and older is not self:
            logger.info(
                "%s connected again from %s; closing its older connection from %s "
                "(two processes using one identity knock each other off)",
                identity.client_id,
                self.peer,
                older.peer,
            )
        session, present = self._sessions.attach(client_id, event.clean_session)
        self.identity = identity
        self._settled()
        # Filters outside the identity's own get SUBACK 0x80. IoT Hub's documentation does
        # not say whether it fails such a filter or closes the connection (reference A.5);
        # a failure code keeps the client connected and tells it which filter was refused.
        own = functools.partial(may_subscribe, identity.device_id, identity.module_id)
        accept = self.conn.accept(session, present, may_subscribe=own)
        self.send(accept)  # CONNACK before what joining presence may deliver (C2D)
        # Presence closes an older connection of this identity and records this one.
        self._core.presence.connect(identity, self)
        logger.info(
            "%s connected from %s over %s (keep-alive %ds, %s)",
            identity.client_id,
            self.peer,
            self.via,
            event.keepalive,
            "session resumed" if present else "new session",
        )

    def _closed(self) -> None:
        identity = self.identity
        if identity is not None:
            self._core.presence.disconnect(identity, self)
        session = self.conn.session
        if session is not None:
            self._sessions.release(session)
        if identity is not None:
            logger.info(
                "%s disconnected (from %s): %s", identity.client_id, self.peer, self.close_reason
            )
        else:
            logger.debug("connection from %s closed: %s", self.peer, self.close_reason)

    # -- what the core delivers (DeliveryTarget) ----------------------------------------

    def _on_loop(self, handler: Callable[..., Any], *args: Any) -> None:
        """The core may write from another thread; this connection lives on its loop."""
        if threading.get_ident() == self._loop_thread:
            handler(*args)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(handler, *args)

    @property
    def accepts_methods(self) -> bool:
        return self.granted_qos(_METHOD_PROBE) is not None

    def deliver_method(self, name: str, rid: str, payload: bytes) -> bool:
        # QoS 0 like IoT Hub; the SDK drops queued requests on a disconnect anyway (A.9).
        return self.publish(method_request_topic(name, rid), payload, 0)

    def deliver_desired(self, patch: dict[str, Any]) -> None:
        self._on_loop(self._push_desired, patch)

    def _push_desired(self, patch: dict[str, Any]) -> None:
        topic = desired_patch_topic(patch["$version"])
        if self.granted_qos(topic) is not None:
            self.publish(topic, encode_json(patch), TWIN_QOS)

    @property
    def accepts_c2d(self) -> bool:
        identity = self.identity
        if identity is None or identity.module_id is not None:
            return False
        return self.granted_qos(c2d_topic(identity.device_id)) is not None

    def deliver_c2d(self, message: C2DMessage) -> bool:
        """``devices/<d>/messages/devicebound/<bag>`` at QoS 1, as IoT Hub sends it (A.11);
        the client's PUBACK completes the message. Called on the loop (the core's thread)."""
        identity = self.identity
        assert message.lock_token is not None
        if identity is None or threading.get_ident() != self._loop_thread:
            return False
        bag = {
            "$.mid": message.message_id,
            "$.to": f"/devices/{identity.device_id}/messages/deviceBound",
            **message.properties,
        }
        topic = c2d_topic(identity.device_id, bag)
        qos = min(1, self.granted_qos(topic) or 0)
        if not self.publish(topic, message.body, qos):
            return False
        session = self.conn.session
        if qos == 0 or session is None:  # no PUBACK will come: delivered is taken
            self._core.complete_c2d(identity.device_id, message.lock_token)
        else:
            packet_id = session.in_flight[-1].packet_id
            assert packet_id is not None
            self._sessions.c2d_sent(identity.client_id, packet_id, message.lock_token)
        return True

    # -- output -------------------------------------------------------------------------

    def granted_qos(self, topic: str) -> int | None:
        """The QoS this client subscribed ``topic`` with, None if it did not."""
        session = self.conn.session
        if not self.connected or session is None:
            return None
        return session.granted_qos(topic)

    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Queue a PUBLISH to the client; False if the connection cannot take it."""
        if not self.connected:
            return False
        session = self.conn.session
        if qos and session is not None and len(session.in_flight) >= MAX_IN_FLIGHT:
            self.close(f"{MAX_IN_FLIGHT} messages unacknowledged", abort=True)
            return False
        try:
            data = self.conn.publish(topic, payload, qos)
        except LocalProtocolError as exc:
            self.close(f"cannot publish {topic}: {exc}", abort=True)
            return False
        logger.debug("to %s: %s (%d bytes, QoS %d)", self.name, topic, len(payload), qos)
        return self.send(data)

    def send(self, data: bytes) -> bool:
        if not data:
            return True
        transport = self._writer.transport
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() + len(data) > self._max_outbound:
            self.close(
                f"more than {self._max_outbound} bytes wait to be sent: the client reads "
                "too slowly",
                abort=True,
            )
            return False
        self._writer.write(data)
        return True

    # -- closing ------------------------------------------------------------------------

    def close(self, reason: str, *, abort: bool = False) -> None:
        """End this connection from the hub's side; the task then finishes by itself."""
        if threading.get_ident() != self._loop_thread:
            self._on_loop(functools.partial(self.close, reason, abort=abort))
            return
        if self.close_reason is not None:
            return
        self._note_close(reason)
        self.conn.close(reason)
        self._shut(abort=abort)

    def _note_close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason

    def _shut(self, *, abort: bool) -> None:
        transport = self._writer.transport
        if abort:
            transport.abort()
        elif not transport.is_closing():
            transport.close()  # sends what is queued (a refusing CONNACK), then closes
