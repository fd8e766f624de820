"""The local hub's device endpoint: MQTT 3.1.1 over TLS, as azure-iot-device speaks it.

:class:`MqttServer` owns the listener, one :class:`DeviceLink` task per connection, the
MQTT sessions that outlive connections, and a periodic keep-alive check. It turns core
events into device messages (desired patches, dropped identities) and implements the REST
side's ``MethodInvoker`` for direct methods. Reference sections: A (device side) and F.

Rules it keeps (checklist F):
- CONNACK 0, or 5 for every authentication failure (never 1, A.4).
- One connection per identity: a newer CONNECT closes the older connection. Two processes
  using one identity therefore knock each other off in a loop, as on IoT Hub (A.12).
- Clean-session-0 sessions keep subscriptions and un-acked QoS 1 messages across
  reconnects; the SDK never re-subscribes (A.5). Their subscriptions are also saved in the
  hub's store, so they survive a hub restart too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.core.context import RemovalReason
from twin_explorer.localhub.core.device_ops import (
    RecentReplies,
    Reply,
    encode_json,
    reported_patch_reply,
)
from twin_explorer.localhub.core.identity import MAX_ID_LENGTH
from twin_explorer.localhub.core.methods import DirectMethods
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.protocols.mqtt import ConnectRequested, Disconnected, SessionStore
from twin_explorer.localhub.protocols.mqtt.iothub_topics import (
    METHOD_REQUEST_FILTER,
    Telemetry,
    desired_patch_topic,
    may_subscribe,
    method_request_topic,
)
from twin_explorer.localhub.store.sessions import PersistedSubscriptions
from twin_explorer.localhub.transports.listeners import ConnectionGate
from twin_explorer.localhub.transports.mqtt.link import MAX_OUTBOUND, TWIN_QOS, DeviceLink
from twin_explorer.twin.identity import identity_path

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.hub import HubCore

logger = logging.getLogger(__name__)

CONNACK_IDENTIFIER_REJECTED = 2
CONNACK_SERVER_UNAVAILABLE = 3
CONNACK_NOT_AUTHORIZED = 5
SWEEP_INTERVAL = 1.0  # seconds between keep-alive checks
# A client id is '<deviceId>' or '<deviceId>/<moduleId>', each id at most 128 characters
# (C.6; IoT Hub documents deviceId and moduleId as "up to 128 characters long").
MAX_CLIENT_ID = 2 * MAX_ID_LENGTH + 1
# Any topic the methods filter covers: "is this client subscribed to method requests?"
_METHOD_PROBE = method_request_topic("probe", "0")


def _covers(device_id: str, module_id: str | None, client_id: str) -> bool:
    """Does a removal of ``device_id`` (all modules when ``module_id`` is None) hit it?"""
    if module_id is not None:
        return client_id == identity_path(device_id, module_id)
    return client_id == device_id or client_id.startswith(device_id + "/")


class MqttServer:
    """Device-side MQTT server over ``core``.

    ``start(host, port)`` listens; ``close()`` (or leaving ``async with``) ends everything.
    ``clock`` (seconds) drives keep-alive checks only; the core keeps its own time.
    """

    def __init__(
        self,
        core: HubCore,
        ssl_context: ssl.SSLContext | None,
        *,
        clock: Callable[[], float] = time.time,
        sweep_interval: float = SWEEP_INTERVAL,
        max_outbound: int = MAX_OUTBOUND,
        gate: ConnectionGate | None = None,
    ) -> None:
        self.core = core
        # The hub's shared gate (one cap for all listeners), or one of our own.
        self._gate = gate or ConnectionGate()
        self._transports: dict[DeviceLink, asyncio.BaseTransport] = {}
        self._ssl = ssl_context
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._max_outbound = max_outbound
        self.sessions = SessionStore()
        self.methods = DirectMethods(self._method_target)
        self._replies = RecentReplies()
        self._links: dict[DeviceLink, asyncio.Task[None]] = {}
        self._online: dict[str, DeviceLink] = {}  # client id -> its accepted connection
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._port: int | None = None
        self._closed = False
        self._saved = PersistedSubscriptions(core.store, self.sessions)
        try:
            if restored := self._saved.restore():
                logger.info("restored the MQTT sessions of %d clients", restored)
        except Exception:
            logger.exception("restoring MQTT sessions failed; clients start afresh")
        core.on_desired_patch(self._from_core(self._push_desired))
        core.on_identity_removed(self._from_core(self._drop_identity))

    # -- lifetime -----------------------------------------------------------------------

    async def __aenter__(self) -> MqttServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MQTT server not started")
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: the OS chooses) and return the bound port."""
        if self._server is not None or self._closed:
            raise RuntimeError("MQTT server already started or closed")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # The gate runs TLS with its handshake timeout and closes a connection that
        # sends no CONNECT in its header timeout; keep-alive rules once admitted.
        self._server = await self._gate.serve(
            self._gate.stream_factory(self._accept), host, port, tls=self._ssl
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._sweeper = self._loop.create_task(self._sweep_forever())
        logger.info("MQTT server listening on %s:%d", host, self._port)
        return self._port

    async def close(self) -> None:
        """Stop listening, fail pending method calls, close every connection and wait for
        every task. Safe to call more than once."""
        self._closed = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
        self.methods.close()
        tasks = list(self._links.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *([sweeper] if sweeper else []), return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback: the task exists the moment the connection does, so close()
        # cannot miss a connection whose coroutine has not started yet.
        if self._closed:
            writer.transport.abort()
            return
        link = DeviceLink(self, reader, writer, self._clock, max_outbound=self._max_outbound)
        self._transports[link] = writer.transport
        logger.debug("TLS connection from %s", link.peer)
        self._links[link] = asyncio.get_running_loop().create_task(link.run())

    # -- connections (called by DeviceLink) ---------------------------------------------

    def admit(self, link: DeviceLink, event: ConnectRequested) -> None:
        """Answer a CONNECT: authenticate, take the identity over, attach its session."""
        client_id = event.client_id
        if len(client_id) > MAX_CLIENT_ID:
            # Refused before any other work: no identity can have such an id. CONNACK 2
            # (identifier rejected) also stops the SDK's reconnect loop (A.4).
            logger.info(
                "refused %r from %s: a client id of %d characters (ids are at most %d)",
                clip(client_id),
                link.peer,
                len(client_id),
                MAX_ID_LENGTH,
            )
            link.send(link.conn.refuse(CONNACK_IDENTIFIER_REJECTED))
            return
        password = None if event.password is None else event.password.decode("utf-8", "replace")
        try:
            identity = self.core.authenticate_device(client_id, event.username, password)
        except HubError as error:
            # The reason can quote the token's resource or policy name: client text too.
            logger.info("refused %r from %s: %s", client_id, link.peer, clip(error.message, 512))
            link.send(link.conn.refuse(CONNACK_NOT_AUTHORIZED))
            return
        except Exception:
            logger.exception("authenticating %r failed", client_id)
            link.send(link.conn.refuse(CONNACK_SERVER_UNAVAILABLE))
            return
        older = self._online.pop(identity.client_id, None)
        if older is not None and older is not link:
            logger.info(
                "%s connected again from %s; closing its older connection from %s "
                "(two processes using one identity knock each other off)",
                identity.client_id,
                link.peer,
                older.peer,
            )
            older.close("another connection took over this identity")
        session, present = self.sessions.attach(client_id, event.clean_session)
        if event.clean_session:
            self._save_sessions()  # a clean start ends the kept session
        link.identity = identity
        if transport := self._transports.get(link):
            self._gate.settled(transport)  # MQTT keep-alive from here on
        # Filters outside the identity's own get SUBACK 0x80. IoT Hub's documentation does
        # not say whether it fails such a filter or closes the connection (reference A.5);
        # a failure code keeps the client connected and tells it which filter was refused.
        own = functools.partial(may_subscribe, identity.device_id, identity.module_id)
        link.send(link.conn.accept(session, present, may_subscribe=own))
        self._online[identity.client_id] = link
        self._set_connected(identity, True)
        logger.info(
            "%s connected from %s (keep-alive %ds, %s)",
            identity.client_id,
            link.peer,
            event.keepalive,
            "session resumed" if present else "new session",
        )
        if session.matches(_METHOD_PROBE):
            self.methods.target_ready(identity.client_id)

    def subscribed(self, link: DeviceLink, filters: Iterable[str]) -> None:
        self._save_sessions()
        if link.identity is not None and METHOD_REQUEST_FILTER in filters:
            self.methods.target_ready(link.identity.client_id)

    def unsubscribed(self, link: DeviceLink, filters: Iterable[str]) -> None:
        self._save_sessions()

    def _save_sessions(self) -> None:
        try:
            self._saved.save()
        except Exception:  # the live session still works; only a restart would lose it
            logger.exception("saving MQTT subscriptions failed")

    def link_closed(self, link: DeviceLink) -> None:
        self._links.pop(link, None)
        self._transports.pop(link, None)
        identity = link.identity
        if identity is not None and self._online.get(identity.client_id) is link:
            del self._online[identity.client_id]
            self._set_connected(identity, False)
        session = link.conn.session
        if session is not None:
            self.sessions.release(session)
        if identity is not None:
            logger.info(
                "%s disconnected (from %s): %s", identity.client_id, link.peer, link.close_reason
            )
        else:
            logger.debug("connection from %s closed: %s", link.peer, link.close_reason)

    def _set_connected(self, identity: Identity, connected: bool) -> None:
        try:
            self.core.set_connected(identity.device_id, identity.module_id, connected)
        except Exception:  # a closing core must not take the connection bookkeeping down
            logger.exception("recording %s as connected=%s failed", identity.client_id, connected)

    # -- device requests (called by DeviceLink) -----------------------------------------

    def reported_patch(self, identity: Identity, rid: str, body: bytes) -> Reply:
        reply = self._replies.get(identity.client_id, rid)
        if reply is None:
            reply = reported_patch_reply(self.core, identity, rid, body)
            self._replies.put(identity.client_id, rid, reply)
        else:
            logger.debug("%s re-sent reported patch %s; answering it again", identity, rid)
        return reply

    def telemetry(self, identity: Identity, message: Telemetry) -> None:
        if message.output_name is not None:
            # Module outputs are routed nowhere yet; IoT Hub would apply its routes.
            logger.debug(
                "%s sent to output %r; no route takes it", identity.client_id, message.output_name
            )
        self.core.record_telemetry(
            identity.device_id,
            identity.module_id,
            message.properties,
            message.system_properties,
            message.body,
        )

    # -- what the core tells us ---------------------------------------------------------

    def _from_core(self, handler: Callable[..., None]) -> Callable[..., None]:
        """Core listeners run on whatever thread wrote; connections live on our loop."""

        def listener(*args: Any) -> None:
            if self._closed or self._loop is None:
                return
            if threading.get_ident() == self._loop_thread:
                handler(*args)
            else:
                self._loop.call_soon_threadsafe(handler, *args)

        return listener

    def _push_desired(self, device_id: str, module_id: str | None, body: dict[str, Any]) -> None:
        """Every desired change goes to the identity's connection if it subscribed (C.7)."""
        link = self._online.get(identity_path(device_id, module_id))
        if link is None:
            return
        topic = desired_patch_topic(body["$version"])
        if link.granted_qos(topic) is not None:
            link.publish(topic, encode_json(body), TWIN_QOS)

    def _drop_identity(self, device_id: str, module_id: str | None, reason: RemovalReason) -> None:
        """Deleted, disabled or re-keyed: its connections go, and its reconnect is refused."""
        for client_id, link in list(self._online.items()):
            if _covers(device_id, module_id, client_id):
                link.close(f"identity {reason.value}")
        if reason is RemovalReason.DELETED:
            for session in self.sessions:
                if _covers(device_id, module_id, session.client_id):
                    self.sessions.discard(session.client_id)
                    self._replies.forget(session.client_id)
            self._save_sessions()

    # -- direct methods (the REST MethodInvoker) ----------------------------------------

    async def invoke_method(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        """Deliver a direct method; see :meth:`DirectMethods.invoke_method`."""
        return await self.methods.invoke_method(*args, **kwargs)

    def _method_target(self, client_id: str) -> DeviceLink | None:
        link = self._online.get(client_id)
        if link is None or link.granted_qos(_METHOD_PROBE) is None:
            return None
        return link

    # -- inspection and control ---------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Open connections, authenticated or not."""
        return len(self._links)

    def connected_clients(self) -> list[str]:
        """Client ids (``d`` or ``d/m``) with a live, accepted connection."""
        return sorted(cid for cid, link in self._online.items() if link.connected)

    def disconnect(self, device_id: str, module_id: str | None = None) -> bool:
        """Drop an identity's connection as a network failure would; the SDK reconnects."""
        link = self._online.get(identity_path(device_id, module_id))
        if link is None:
            return False
        link.close("dropped by the hub", abort=True)
        return True

    def check_timeouts(self) -> int:
        """Close connections silent for more than 1.5 x keep-alive (or without CONNECT in
        time); returns how many. Runs every ``sweep_interval`` seconds by itself."""
        now = self._clock()
        closed = 0
        for link in list(self._links):
            if link.conn.check_timeout(now):
                event = link.conn.next_event()
                why = (
                    f"{event.reason.value}: {event.detail}"
                    if isinstance(event, Disconnected)
                    else ""
                )
                link.close(why or "timed out", abort=True)
                closed += 1
        return closed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                self.check_timeouts()
            except Exception:
                logger.exception("keep-alive check failed")
