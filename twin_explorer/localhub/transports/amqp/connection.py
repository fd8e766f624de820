"""One AMQP connection: moves bytes between a stream and the sans-I/O ``ServerConnection``.

An :class:`AmqpConnection` runs as one task. It reads, feeds the engine, maps each event
to a core call and writes whatever the engine produced:

- SASL: ANONYMOUS and MSSBCBS pass (CBS authenticates later); PLAIN's password is
  checked as a SAS token and its grant bound to the connection (reference A.2).
- ``$cbs`` put-token: the token is checked by the core; a device or module token makes
  that identity join the core's presence through an :class:`IdentityEndpoint`; a hub-wide
  one grants its policy's rights. A token that runs out detaches the links it
  authorised, unless a new put-token renewed it (B.4).
- Every ATTACH is authorised by the node its address names (a module's links need that
  module's token, service nodes ServiceConnect) and refused ``amqp:unauthorized-access``
  otherwise, ``amqp:not-found`` for no such node.
- Device and module nodes: twin, methods, telemetry, C2D (see ``endpoint.py``); the
  service's ``/messages/devicebound`` sender queues C2D messages in the core.

Memory stays bounded: reading pauses while the output is above its high-water mark (a
client that asks without reading is simply not read), messages the hub pushes wait for
link credit in a bounded queue, and output beyond ``max_outbound`` drops the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.core.auth import Right, TokenGrant
from twin_explorer.localhub.core.roles import Permission
from twin_explorer.localhub.errors import AuthError, HubError
from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    ConnectionClosed,
    ConnectionOpened,
    CreditChanged,
    DeliveryUpdated,
    Error,
    Int,
    Link,
    LinkAttachRequested,
    LinkDetached,
    Message,
    MessageReceived,
    Modified,
    Rejected,
    Released,
    SaslInitReceived,
    ServerConnection,
    Symbol,
)
from twin_explorer.localhub.protocols.amqp import errors as conditions
from twin_explorer.localhub.transports.amqp import eventhub, messages
from twin_explorer.localhub.transports.amqp.addresses import Kind, Node, device_of, parse_address
from twin_explorer.localhub.transports.amqp.endpoint import IdentityEndpoint

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
HIGH_WATER = 256 * 1024  # reading pauses above this much unsent data
MAX_OUTBOUND = 4 * 1024 * 1024  # hub-pushed data beyond this drops the client
MAX_WAITING = 1000  # messages a connection's links may hold waiting for credit, all together
WRITE_TIMEOUT = 60.0
CLIENT_CREDIT = 100  # credit we grant client senders, topped up as messages come
PUT_TOKEN = "put-token"
SAS_TOKEN_TYPES = ("servicebus.windows.net:sastoken", "azure-devices.net:sastoken")
# Entra ID access tokens: azure-iot-hub's from_token_credential puts "Bearer <jwt>" with
# type "bearer" (uamqp's JWTTokenAuth); other AMQP clients say "jwt".
JWT_TOKEN_TYPES = ("jwt", "bearer")
# What an Entra ID principal's role must allow to attach to a service node (IoT Hub's
# data actions); nodes not listed take a shared access policy's token only.
SERVICE_PERMISSIONS = {
    Kind.SERVICE_C2D: Permission.C2D_SEND,
    Kind.FEEDBACK: Permission.C2D_FEEDBACK,
}
# Tokens a connection may have refused before it is closed: a client guessing keys (or
# one stuck with a bad one) gets a few answers, not a log line per message forever.
MAX_REFUSED_TOKENS = 8


@dataclass
class _Route:
    """What we know of an attached link."""

    node: Node
    grant: str | None  # the grant key that authorised it
    endpoint: IdentityEndpoint | None = None
    waiting: deque[tuple[Message, bool, bytes | None]] = field(default_factory=deque)
    received: int = 0  # messages since credit was last topped up


def _unauthorized(description: str) -> Error:
    return Error(conditions.UNAUTHORIZED_ACCESS, description, None)


class AmqpConnection:
    """A connection from accept to close (see module doc)."""

    def __init__(
        self,
        core: HubCore,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        via: str = "amqps",
        settled: Callable[[], None] = lambda: None,
        max_outbound: int = MAX_OUTBOUND,
        write_timeout: float = WRITE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self._reader = reader
        self._writer = writer
        self._via = via
        self._settled = settled
        self._max_outbound = max_outbound
        self._write_timeout = write_timeout
        self._clock = clock
        self._wall = wall_clock
        self.conn = ServerConnection("localhub")
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.close_reason: str | None = None
        self._grants: dict[str, TokenGrant] = {}
        self._entra_tokens: dict[str, str] = {}  # grant key -> the Entra ID token behind it
        self.endpoints: dict[str, IdentityEndpoint] = {}
        self._routes: dict[Link, _Route] = {}
        self._cbs_senders: list[Link] = []
        self._held: list[tuple[Link, int]] = []  # telemetry deliveries awaiting the commit
        self._waiting = 0  # messages held for links without credit (see push)
        self._feedback_links: list[Link] = []
        # Feedback batches sent, until the service completes them (peek-lock, as IoT Hub).
        self._feedback_sent: dict[tuple[Link, bytes], list[dict[str, Any]]] = {}
        self._unsubscribe_feedback: Callable[[], None] | None = None
        self._awaiting_commit = False
        self._tick: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._authenticated = False
        self._drained: list[Callable[[], None]] = []  # when_drained callbacks
        self.eventhub = eventhub.EventHubLinks(self)
        self._refused_tokens = 0
        with contextlib.suppress(AttributeError, NotImplementedError):
            writer.transport.set_write_buffer_limits(high=HIGH_WATER)

    def __repr__(self) -> str:
        return f"<AmqpConnection {self.name}>"

    @property
    def name(self) -> str:
        who = ",".join(self.endpoints) or ",".join(self._grants)
        return f"{who or 'connection'} from {self.peer} ({self._via})"

    @property
    def open(self) -> bool:
        return self.close_reason is None

    # -- the task ------------------------------------------------------------------------

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
            self._ended()
            self._shut(abort=self.close_reason in ("hub closing", "internal error"))

    async def _serve(self) -> None:
        while self.open:
            data = await self._reader.read(READ_CHUNK)
            self._handle(self.conn.receive_data(data, now=self._clock()))
            self._flush()
            if not data or not self.open:
                return
            if self._buffered() > HIGH_WATER:
                await self._drain()

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await self._writer.drain()
        except TimeoutError:
            self.close(f"the client read nothing for {self._write_timeout:g}s", abort=True)

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            if not self.open:
                return
            try:
                self._dispatch(event)
            except HubError as error:  # a core refusal we did not expect here
                logger.info("%s: %s", self.name, clip(error.message, 512))

    def _dispatch(self, event: Any) -> None:
        match event:
            case SaslInitReceived():
                self._sasl(event)
            case ConnectionOpened():
                logger.debug("%s opened (container %r)", self.name, clip(str(event.container_id)))
            case LinkAttachRequested(link=link):
                self._attach(link)
            case MessageReceived():
                self._received(event)
            case CreditChanged(link=link, drain=drain):
                self._credit(link, drain)
            case DeliveryUpdated():
                self._delivery_updated(event)
            case LinkDetached(link=link, error=error):
                self._detached(link, error)
            case ConnectionClosed(error=error):
                why = "closed by the client"
                if error is not None:
                    why = f"{error.condition}: {clip(str(error.description or ''), 200)}"
                self._note_close(why)

    # -- output --------------------------------------------------------------------------

    def _buffered(self) -> int:
        """Bytes written and not yet sent, and frames the engine holds for a shut
        session window."""
        try:
            written = self._writer.transport.get_write_buffer_size()
        except (AttributeError, NotImplementedError):
            written = 0
        return written + self.conn.pending_output_bytes

    def _flush(self) -> None:
        """Write what the engine queued and schedule its next heartbeat or timeout."""
        data = self.conn.data_to_send(now=self._clock())
        if data:
            transport = self._writer.transport
            if transport.is_closing():
                return
            if self._buffered() + len(data) > self._max_outbound:
                self.close(
                    f"more than {self._max_outbound} bytes wait to be sent: the client "
                    "reads too slowly",
                    abort=True,
                )
                return
            self._writer.write(data)
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        deadline = self.conn.next_deadline()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if deadline is None or not self.open:
            return
        delay = max(0.0, deadline - self._clock())
        self._tick = self.loop.call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        if not self.open:
            return
        self._handle(self.conn.tick(self._clock()))
        self._flush()
        if not self.open:
            self._shut(abort=False)

    def flush_output(self) -> None:
        """Write what the engine queued (after sending several messages)."""
        if self.open:
            self._flush()

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.loop_thread

    def output_full(self) -> bool:
        """True while more than the high-water mark waits to be sent."""
        return self._buffered() > HIGH_WATER

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the output is written below the high-water mark."""
        self._drained.append(callback)
        if len(self._drained) == 1:
            self.loop.create_task(self._drain_then_call())

    async def _drain_then_call(self) -> None:
        await self._drain()
        callbacks, self._drained = self._drained, []
        for callback in callbacks:
            if self.open:
                callback()

    def send_now(self, link: Link, message: Message, *, settled: bool, tag: bytes | None) -> bool:
        """Send on a link with credit; False (nothing sent) without."""
        if not self.open:
            return False
        if self.conn.send(link, message, settled=settled, tag=tag) is None:
            return False
        self._flush()
        return self.open

    def push(self, link: Link, message: Message) -> bool:
        """Send ``message`` settled on a link of ours, or queue it until credit comes."""
        route = self._routes.get(link)
        if route is None or not self.open:
            return False
        if route.waiting or not self.send_now(link, message, settled=True, tag=None):
            if not self.open:
                return False
            if self._waiting >= MAX_WAITING:
                self.close(f"{MAX_WAITING} messages wait for link credit it does not grant")
                return False
            route.waiting.append((message, True, None))
            self._waiting += 1
        return True

    def _credit(self, link: Link, drain: bool) -> None:
        route = self._routes.get(link)
        if route is None:
            if drain:
                self.conn.complete_drain(link)
            return
        while route.waiting:
            message, settled, tag = route.waiting[0]
            if self.conn.send(link, message, settled=settled, tag=tag) is None:
                break
            route.waiting.popleft()
            self._waiting -= 1
        if route.node.kind is Kind.FEEDBACK:
            self._send_feedback()
        if route.node.kind is Kind.EVENTHUB:
            self.eventhub.credit(link)
        endpoint = route.endpoint
        if endpoint is not None and link in (endpoint.c2d_receiver, endpoint.methods_receiver):
            self.core.presence.ready(endpoint.identity)  # waiting C2D and method calls go
        if drain and not route.waiting:
            self.conn.complete_drain(link)

    # -- SASL and CBS ----------------------------------------------------------------------

    def _sasl(self, event: SaslInitReceived) -> None:
        mechanism = str(event.mechanism).upper()
        if mechanism in ("ANONYMOUS", "MSSBCBS"):
            self._handle(self.conn.sasl_outcome(True))
            return
        if mechanism == "PLAIN":
            try:
                self._grant(self.core.authenticate_token(event.password or ""))
            except AuthError as error:
                logger.info("SASL PLAIN from %s refused: %s", self.peer, clip(error.message, 512))
                self._handle(self.conn.sasl_outcome(False))
                return
            self._handle(self.conn.sasl_outcome(True))
            return
        logger.info("SASL %s from %s refused: not offered", clip(mechanism, 40), self.peer)
        self._handle(self.conn.sasl_outcome(False))

    def _put_token(self, message: Message) -> tuple[int, str]:
        application = message.application_properties or {}
        if str(application.get("operation", "")) != PUT_TOKEN:
            return 400, "Only put-token is supported."
        kind = str(application.get("type", "")).lower()
        if kind not in SAS_TOKEN_TYPES + JWT_TOKEN_TYPES:
            return 400, "Only SAS tokens (servicebus.windows.net:sastoken) and jwt are supported."
        token = messages.body_bytes(message).decode("utf-8", "replace")
        try:
            if kind in JWT_TOKEN_TYPES:
                self._put_jwt(token)
            else:
                self._grant(self.core.authenticate_token(token))
        except AuthError as error:
            self._refused_tokens += 1
            logger.info("put-token on %s refused: %s", self.name, clip(error.message, 512))
            return 401, error.message
        return 200, "OK"

    def _put_jwt(self, token: str) -> None:
        """An Entra ID access token: checked now (signature, audience, issuer, times);
        each link it is to open is then authorised by the principal's roles (_authorize).
        Shared-key settings do not apply to it (``--disable-local-auth`` keeps it)."""
        if token[:7].lower() == "bearer ":
            token = token[7:]
        access = self.core.access
        principal = access.entra.verify_access_token(token)
        key = f"entra:{principal.object_id}"
        self._entra_tokens[key] = token
        self._grant(TokenGrant(access.token_expiry(token)), key=key)
        logger.info("%s: Entra ID token accepted for %s", self.name, clip(principal.name, 200))

    def _grant(self, grant: TokenGrant, *, key: str | None = None) -> None:
        """Bind a checked token to the connection (a renewal replaces the older one)."""
        identity = grant.identity
        if key is None:
            key = identity.client_id if identity is not None else f"policy:{grant.policy}"
        self._grants[key] = grant
        if not self._authenticated:
            self._authenticated = True
            self._settled()  # AMQP's own idle timeout rules from here on
        if identity is not None and key not in self.endpoints:
            endpoint = IdentityEndpoint(self, identity)
            self.endpoints[key] = endpoint
            # Presence closes an older connection of this identity and records this one.
            self.core.presence.connect(identity, endpoint)
            endpoint.joined = True
            logger.info("%s connected from %s (%s)", key, self.peer, self._via)
        self._watch_expiry()

    def _watch_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if not self._grants or not self.open:
            return
        first = min(grant.expiry for grant in self._grants.values())
        self._expiry = self.loop.call_later(max(0.0, first - self._wall()), self._expire)

    def _expire(self) -> None:
        """Tokens that ran out take their links with them (IoT Hub detaches them)."""
        self._expiry = None
        now = self._wall()
        for key, grant in list(self._grants.items()):
            if grant.expiry <= now:
                self._revoke(key, _unauthorized("The token that authorised this link expired."))
                logger.info("%s: the token for %s expired; its links are detached", self.name, key)
        self._flush()
        self._watch_expiry()

    def _revoke(self, key: str, error: Error) -> None:
        """Forget a grant: detach the links it authorised; its identity goes offline."""
        self._grants.pop(key, None)
        self._entra_tokens.pop(key, None)
        for link, route in list(self._routes.items()):
            if route.grant == key:
                self._routes.pop(link, None)
                self._waiting -= len(route.waiting)
                if route.endpoint is not None:
                    route.endpoint.forget(link)
                self.eventhub.detached(link)
                self.conn.detach(link, error)
        endpoint = self.endpoints.pop(key, None)
        if endpoint is not None:
            self._leave(endpoint)

    def drop_identity(self, endpoint: IdentityEndpoint, reason: str) -> None:
        """The hub ends an identity's use of this connection (another connection took it
        over, it was deleted or disabled): only its links go when others share the
        connection (.NET multiplexes devices), else the whole connection."""
        key = endpoint.identity.client_id
        if self.endpoints.get(key) is not endpoint:
            return
        if len(self.endpoints) == 1:
            self.close(reason)
            return
        self._revoke(key, Error(conditions.LINK_DETACH_FORCED, reason, None))
        self._flush()

    # -- links -----------------------------------------------------------------------------

    def _attach(self, link: Link) -> None:
        node = parse_address(link.address)
        sender = link.role == "sender"  # the client sends, we receive
        if node.kind is Kind.CBS:
            self._accept(link, _Route(node, None), credit=sender)
            if not sender:
                self._cbs_senders.append(link)
            return
        hub_node = eventhub.parse(link.address)
        if hub_node is not None:
            self._attach_eventhub(link, hub_node)
            return
        if not self._role_fits(node, sender):
            self.conn.refuse_link(
                link, Error(conditions.NOT_FOUND, f"No such node: {clip(str(link.address))}", None)
            )
            return
        grant_key, why = self._authorize(node, str(link.address))
        if grant_key is None:
            logger.info("%s: attach to %s refused: %s", self.name, clip(str(link.address)), why)
            self.conn.refuse_link(link, _unauthorized(why))
            return
        endpoint = self.endpoints.get(node.client_id) if node.client_id else None
        route = _Route(node, grant_key, endpoint)
        if node.kind is Kind.FEEDBACK:
            self._feedback_links.append(link)
            if self._unsubscribe_feedback is None:
                self._unsubscribe_feedback = self.core.feedback.subscribe(self._send_feedback)
        if endpoint is not None:
            endpoint.links.add(link)
            if not sender:
                match node.kind:
                    case Kind.TWIN:
                        endpoint.twin_receiver = link
                    case Kind.METHODS:
                        endpoint.methods_receiver = link
                    case Kind.DEVICEBOUND:
                        endpoint.c2d_receiver = link
        self._accept(link, route, credit=sender)

    def _attach_eventhub(self, link: Any, hub_node: Any) -> None:
        """A node of the Event Hub-compatible endpoint: ServiceConnect, then its rules."""
        node = Node(Kind.EVENTHUB)
        grant_key, why = self._authorize(node, str(link.address))
        error = _unauthorized(why) if grant_key is None else self.eventhub.attach(link, hub_node)
        if error is not None:
            where = clip(str(link.address))
            logger.info("%s: attach to %s refused: %s", self.name, where, error.description)
            self.conn.refuse_link(link, error, echo=True)  # the client sees why (E.4)
            return
        self._accept(link, _Route(node, grant_key), credit=link.role == "sender")
        if link.role == "receiver":
            self.eventhub.credit(link)

    @staticmethod
    def _role_fits(node: Node, sender: bool) -> bool:
        """Client senders and receivers each have their nodes (C.1, D)."""
        match node.kind:
            case Kind.TWIN | Kind.METHODS:
                return True
            case Kind.EVENTS:
                return sender or node.module_id is not None  # module inputs
            case Kind.DEVICEBOUND | Kind.FEEDBACK:
                return not sender
            case Kind.SERVICE_C2D:
                return sender
        return False

    def _authorize(self, node: Node, address: str) -> tuple[str | None, str]:
        """The grant key that lets this connection attach to ``node``, or None and why."""
        if node.is_service:
            refusals: list[str] = []
            for key, grant in self._grants.items():
                if Right.SERVICE_CONNECT in grant.rights:
                    return key, ""
                token = self._entra_tokens.get(key)
                if token is not None:
                    why = self._entra_refusal(token, node, address)
                    if why is None:
                        return key, ""
                    refusals.append(why)
            if refusals:
                return None, refusals[0]
            if self._grants:
                return None, "This node needs a token with the ServiceConnect permission."
            return None, "No token was put on $cbs for this connection."
        client_id = node.client_id
        assert client_id is not None
        if client_id in self._grants:
            return client_id, ""
        certificates = self._writer.get_extra_info("peer_certificates") or ()
        if certificates:
            return self._certificate_grant(client_id, certificates)
        if self._grants:
            return None, f"The connection's tokens do not cover {client_id!r}."
        return None, "No token was put on $cbs for this connection."

    def _entra_refusal(self, token: str, node: Node, address: str) -> str | None:
        """Why an Entra ID principal may not attach to a service node (None: it may):
        its roles must allow the node's data action, checked by the core as for REST."""
        permission = SERVICE_PERMISSIONS.get(node.kind)
        if permission is None:
            return "This node takes a shared access policy's token, not an Entra ID token."
        try:
            self.core.access.authorize_token(token, permission, "AMQP ATTACH", clip(address))
        except HubError as error:
            return error.message
        return None

    def _certificate_grant(
        self, client_id: str, certificates: Sequence[x509.Certificate]
    ) -> tuple[str | None, str]:
        """X.509 over AMQP: no put-token; the TLS client certificate authenticates the
        identity a link names, through the same core check as an MQTT CONNECT (A.14).
        The grant lasts as long as the certificate."""
        try:
            identity = self.core.authenticate_device(client_id, None, None, certificates)
        except AuthError as error:
            return None, error.message
        expiry = int(certificates[0].not_valid_after_utc.timestamp())
        self._grant(TokenGrant(expiry, identity, None, frozenset({Right.DEVICE_CONNECT})))
        return client_id, ""

    def _accept(self, link: Link, route: _Route, *, credit: bool) -> None:
        self._routes[link] = route
        self.conn.accept_link(link, properties=getattr(link, "properties", None) or None)
        if credit:
            self.conn.grant_credit(link, CLIENT_CREDIT)

    def _detached(self, link: Link, error: Error | None) -> None:
        route = self._routes.pop(link, None)
        if route is not None:
            self._waiting -= len(route.waiting)
        for links in (self._cbs_senders, self._feedback_links):
            with contextlib.suppress(ValueError):
                links.remove(link)
        self._feedback_back(link)
        if route is not None and route.endpoint is not None:
            route.endpoint.forget(link)
        self.eventhub.detached(link)
        if error is not None:
            logger.debug("%s detached %s: %s", self.name, clip(str(link.address)), error)

    # -- messages --------------------------------------------------------------------------

    def _received(self, event: MessageReceived) -> None:
        link = event.link
        route = self._routes.get(link)
        if route is None:
            return
        route.received += 1
        if route.received >= CLIENT_CREDIT // 2:  # top the client's credit up
            route.received = 0
            self.conn.grant_credit(link, CLIENT_CREDIT)
        message = event.message
        endpoint = route.endpoint
        match route.node.kind:
            case Kind.CBS:
                self._settle(event, Accepted())
                self._cbs_reply(message)
                return
            case Kind.SERVICE_C2D:
                self._settle(event, self._service_c2d(message))
                return
            case Kind.EVENTHUB:
                self._settle(event, Accepted())
                self.eventhub.management(message)
                return
        if endpoint is None:  # a policy's device link (no identity of its own here)
            self._settle(event, Accepted())
            return
        identity = endpoint.identity
        devices = self.core.devices
        match route.node.kind:
            case Kind.TWIN:
                self._settle(event, Accepted())
                self._twin_request(endpoint, message)
            case Kind.METHODS:
                self._settle(event, Accepted())
                rid = endpoint.method_rid(messages.correlation_id(message))
                status = messages.app_property(message, messages.METHOD_STATUS)
                if rid is not None:
                    try:
                        code = int(status) if status is not None else 200
                    except (TypeError, ValueError):
                        code = 500
                    devices.method_response(identity, rid, code, messages.body_bytes(message))
            case Kind.EVENTS:
                custom, system, output = messages.telemetry_parts(message)
                devices.telemetry(identity, custom, system, messages.body_bytes(message), output)
                if not event.settled:
                    self._hold(link, event.delivery_id)
        devices.activity(identity)

    def _settle(self, event: MessageReceived, outcome: Any) -> None:
        # Settled at once, also on links in receiver-settle-mode second: uamqp's C2D sender
        # asks for that mode yet waits for a settled disposition (its send never completes
        # on an unsettled one), as the prototype found too (reference F.3).
        if not event.settled:
            self.conn.settle(event.link, event.delivery_id, outcome)

    def _hold(self, link: Link, delivery_id: int) -> None:
        """Accept telemetry once the event log has written it (group commit), as MQTT
        PUBACKs it."""
        self._held.append((link, delivery_id))
        if not self._awaiting_commit:
            self._awaiting_commit = True
            self.core.devices.after_commit(self._release)

    def _release(self, written: bool) -> None:
        self._awaiting_commit = False
        held, self._held = self._held, []
        if not self.open:
            return
        if not written:
            self.close("the hub could not write its messages (disk full)", abort=True)
            return
        for link, delivery_id in held:
            if link in self._routes:
                self.conn.settle(link, delivery_id, Accepted())
        self._flush()

    def _send_feedback(self) -> None:
        """C2D feedback records to a service's feedback receiver with credit, in batches
        as IoT Hub sends them (reference D.2)."""
        if threading.get_ident() != self.loop_thread:
            self.loop.call_soon_threadsafe(self._send_feedback)
            return
        feedback = self.core.feedback
        for link in self._feedback_links:
            while self.open and link.credit > 0 and len(feedback):
                records = feedback.take()
                tag = uuid.uuid4().bytes
                if not self.send_now(link, messages.feedback(records), settled=False, tag=tag):
                    feedback.put_back(records, tell=False)
                    break
                self._feedback_sent[(link, tag)] = records

    def _feedback_settled(self, link: Link, tag: bytes, outcome: Any) -> None:
        """Completed (or rejected) feedback is gone; released or modified comes again."""
        records = self._feedback_sent.pop((link, bytes(tag)), None)
        if records is not None and isinstance(outcome, (Released, Modified)):
            self.core.feedback.put_back(records)

    def _feedback_back(self, link: Link | None = None) -> None:
        """The batches a receiver (``link``, or every one) did not complete go back."""
        for key in [key for key in self._feedback_sent if link is None or key[0] is link]:
            self.core.feedback.put_back(self._feedback_sent.pop(key))

    def _cbs_reply(self, message: Message) -> None:
        status, description = self._put_token(message)
        properties = message.properties
        reply_to = None if properties is None else properties.reply_to
        links = [
            link for link in self._cbs_senders if reply_to is None or link.address == reply_to
        ] or self._cbs_senders
        if not links:
            return
        answer = messages.reply(
            messages.message_id(message),
            b"",
            application={
                "status-code": Int(status),
                "status-description": description,
            },
        )
        self.push(links[0], answer)
        if self._refused_tokens >= MAX_REFUSED_TOKENS:
            self.close(
                f"{MAX_REFUSED_TOKENS} tokens refused on one connection",
                condition=conditions.UNAUTHORIZED_ACCESS,
            )

    def _twin_request(self, endpoint: IdentityEndpoint, message: Message) -> None:
        operation = str(messages.annotation(message, "operation") or "").upper()
        resource = str(messages.annotation(message, "resource") or "")
        correlation = messages.correlation_id(message)
        rid = str(correlation)
        devices = self.core.devices
        identity = endpoint.identity
        version = None
        if operation == "GET":
            reply = devices.twin_get(identity, rid)
            status, body, version = reply.status, reply.payload, reply.version
        elif operation == "PATCH" and resource.lower() == "/properties/reported":
            reply = devices.reported_patch(identity, rid, messages.body_bytes(message))
            status, body, version = reply.status, reply.payload, reply.version
        elif resource.lower() == "/notifications/twin/properties/desired" and operation in (
            "PUT",
            "DELETE",
        ):
            endpoint.desired = operation == "PUT"
            logger.debug(
                "%s %s desired properties",
                identity.client_id,
                "subscribed to" if endpoint.desired else "unsubscribed from",
            )
            status, body = 200, b""
        else:
            status = 400
            body = b'{"errorCode":400000,"message":"Unsupported twin operation."}'
        link = endpoint.twin_receiver
        if link is not None:
            self.push(link, messages.twin_reply(correlation, status, body, version))

    def _service_c2d(self, message: Message) -> Any:
        """Queue a service's C2D message for its device (D.1)."""
        to = None if message.properties is None else message.properties.to
        device_id = device_of(to)
        if device_id is None:
            error = Error(conditions.NOT_FOUND, f"No device in 'to' {clip(str(to))!r}.", None)
            return Rejected(error)
        properties, message_id, expiry_ms = messages.c2d_properties(message)
        kwargs: dict[str, Any] = {}
        if expiry_ms is not None:
            kwargs["ttl_ns"] = max(0, expiry_ms * 1_000_000 - time.time_ns())
        try:
            self.core.send_c2d(
                device_id,
                messages.body_bytes(message),
                properties,
                message_id=message_id,
                **kwargs,
            )
        except HubError as error:
            condition = {
                404: conditions.NOT_FOUND,
                413: conditions.MESSAGE_SIZE_EXCEEDED,
            }.get(error.status, conditions.RESOURCE_LIMIT_EXCEEDED)
            return Rejected(Error(condition, error.message, None))
        return Accepted()

    def _delivery_updated(self, event: DeliveryUpdated) -> None:
        route = self._routes.get(event.link)
        if route is not None and route.node.kind is Kind.FEEDBACK:
            self._feedback_settled(event.link, event.delivery_tag, event.outcome)
            return
        if route is None or route.endpoint is None or route.node.kind is not Kind.DEVICEBOUND:
            return
        outcome = event.outcome
        if isinstance(outcome, Accepted):
            verdict = "complete"
        elif isinstance(outcome, Rejected):
            verdict = "reject"
        elif isinstance(outcome, (Released, Modified)):
            verdict = "abandon"
        else:
            return
        route.endpoint.settle_c2d(event.delivery_tag, verdict)

    # -- closing ---------------------------------------------------------------------------

    def close(
        self, reason: str, *, abort: bool = False, condition: Symbol = conditions.CONNECTION_FORCED
    ) -> None:
        """End the connection from the hub's side (a close with ``condition`` unless
        ``abort``); the task then finishes by itself."""
        if threading.get_ident() != self.loop_thread:
            self.loop.call_soon_threadsafe(
                functools.partial(self.close, reason, abort=abort, condition=condition)
            )
            return
        if self.close_reason is not None:
            return
        self._note_close(reason)
        if not abort:
            with contextlib.suppress(Exception):
                self.conn.close(Error(condition, reason, None))
                data = self.conn.data_to_send(now=self._clock())
                if data and not self._writer.transport.is_closing():
                    self._writer.write(data)
        self._ended()  # offline now, not once the client has gone too
        self._shut(abort=abort)

    def _note_close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason

    def _leave(self, endpoint: IdentityEndpoint) -> None:
        for link in list(endpoint.links):
            endpoint.forget(link)
        if endpoint.joined:
            endpoint.joined = False
            self.core.presence.disconnect(endpoint.identity, endpoint)
            logger.info(
                "%s disconnected (from %s): %s",
                endpoint.identity.client_id,
                self.peer,
                self.close_reason or "its token expired",
            )

    def _ended(self) -> None:
        for handle in (self._tick, self._expiry):
            if handle is not None:
                handle.cancel()
        self._tick = self._expiry = None
        if self._unsubscribe_feedback is not None:
            self._unsubscribe_feedback()
            self._unsubscribe_feedback = None
        self._feedback_back()
        self.eventhub.close()
        endpoints, self.endpoints = self.endpoints, {}
        for endpoint in endpoints.values():
            self._leave(endpoint)
        self._routes.clear()
        if not endpoints:
            logger.debug("connection from %s closed: %s", self.peer, self.close_reason)

    def _shut(self, *, abort: bool) -> None:
        transport = self._writer.transport
        if abort:
            transport.abort()
        elif not transport.is_closing():
            transport.close()
