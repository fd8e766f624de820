"""One device connection: moves bytes between a TLS stream and a sans-I/O ``ServerConnection``.

A :class:`DeviceLink` runs as one task. It reads, feeds the state machine, hands each event
to the server (CONNECT, subscriptions) or answers it (twin requests, telemetry, method
responses), and writes whatever the state machine produced, in order.

Memory stays bounded per connection: reading pauses while the socket's send buffer is
above its high-water mark (so a client that asks without reading is simply not read), and
messages the hub pushes on its own (desired patches, method requests) may not grow that
buffer past ``max_outbound`` bytes: a client that slow is dropped, with a log line saying so.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.core.device_ops import (
    Reply,
    twin_get_reply,
)
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
    parse_device_publish,
)
from twin_explorer.twin.identity import identity_path

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.transports.mqtt.server import MqttServer

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
# Reading pauses above this much unsent data (backpressure on request/response traffic).
HIGH_WATER = 256 * 1024
# Hub-initiated messages may not push unsent data beyond this; the client is dropped then.
MAX_OUTBOUND = 4 * 1024 * 1024
# A client may leave this many of our QoS 1 messages unacknowledged (the SDK acks at once).
MAX_IN_FLIGHT = 1000
WRITE_TIMEOUT = 60.0
# IoT Hub publishes twin responses and desired patches at QoS 0 (the Azure SDK for C
# documents "Twin MQTT Publish messages will have QoS At most once"). QoS 1 would also
# cost every SDK client ~40 ms per twin operation: paho leaves Nagle on, so its PUBACK
# holds back its next request until our delayed ACK (measured: get_twin 45 ms vs 2 ms).
TWIN_QOS = 0


class DeviceLink:
    """A device or module connection, from TLS accept to close."""

    def __init__(
        self,
        server: MqttServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        clock: Callable[[], float],
        *,
        max_outbound: int = MAX_OUTBOUND,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self._server = server
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
            self._server.link_closed(self)
            self._shut(abort=self.close_reason == "hub closing")

    async def _serve(self) -> None:
        while True:
            data = await self._reader.read(READ_CHUNK)
            self.conn.receive_data(data, self._clock())
            if not await self._handle_events() or not data:
                return

    async def _handle_events(self) -> bool:
        """Handle every complete packet; False once the connection is over."""
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

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await self._writer.drain()
        except TimeoutError:
            self.close(f"the client read nothing for {self._write_timeout:g}s", abort=True)

    def _dispatch(self, event: object) -> None:
        match event:
            case ConnectRequested():
                self._server.admit(self, event)
            case Published():
                self._on_publish(event)
            case Subscribed(filters=filters, rejected=rejected):
                logger.debug(
                    "%s subscribed to %s (rejected %s)",
                    self.name,
                    filters,
                    [clip(f) for f in rejected],
                )
                self._server.subscribed(self, filters)
            case Unsubscribed(filters=filters):
                logger.debug("%s unsubscribed from %s", self.name, filters)
                self._server.unsubscribed(self, filters)
            case PubAcked(packet_id=packet_id, topic=topic):
                logger.debug("%s acknowledged %d (%s)", self.name, packet_id, topic)

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
        # copy from a new message by its packet id (MQTT-4.3.2-5). Twin GETs are answered
        # again; a reported patch or method response with a $rid seen before is merged or
        # completed once (RecentReplies, DirectMethods.complete); telemetry may repeat, as
        # QoS 1 on IoT Hub may.
        server = self._server
        match request:
            case TwinGet(rid=rid):
                self._reply(twin_get_reply(server.core, identity, rid))
            case ReportedPatch(rid=rid, body=body):
                self._reply(server.reported_patch(identity, rid, body))
            case MethodResponse(rid=rid, status=status, body=body):
                server.methods.complete(identity.client_id, rid, status, body)
            case Telemetry():
                if (request.device_id, request.module_id) != (
                    identity.device_id,
                    identity.module_id,
                ):
                    sender = clip(identity_path(request.device_id, request.module_id))
                    self.close(f"telemetry sent as {sender}")
                    return
                server.telemetry(identity, request)
        server.core.touch(identity.device_id, identity.module_id)
        if event.needs_ack and event.packet_id is not None:
            self.send(self.conn.ack(event.packet_id))

    def _reply(self, reply: Reply) -> None:
        # Sent even without a subscription to $iothub/twin/res/#: the SDK may ask before
        # it subscribes (A.8). QoS 0 like every twin message of IoT Hub (see TWIN_QOS).
        self.publish(reply.topic, reply.payload, TWIN_QOS)

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
