"""Every connection the hub accepts passes one gate: timeouts, and one cap for all.

:class:`ConnectionGate` accepts for every listener (REST, MQTT, proxy) and keeps each
connection to a deadline until the listener says it is doing real work:

- the TLS handshake must finish within ``handshake_timeout`` (the gate runs it itself, so
  a connection counts from the moment it is accepted, not when TLS is done);
- then a first complete request (REST head and body, MQTT CONNECT, proxy CONNECT) must
  arrive within ``header_timeout``; the listener marks the connection *busy* or *settled*;
- a REST connection between requests may stay ``idle_timeout``, then it is closed.
  MQTT connections, once settled, follow MQTT keep-alive instead.

A TLS handshake is the costliest thing a client can make the loop do without
credentials (an RSA signature, about a millisecond), so handshakes start at most
``handshakes_per_second`` (a token bucket with as many in reserve); the others wait,
unread, in arrival order, within their handshake timeout. A flood of new connections
then slows other new connections a little, never the clients already connected.

One cap counts every socket the hub holds for clients (accepted connections and the
proxy's upstream sockets) and stays a margin below the descriptor limit, whose soft value
is raised to the hard one at start. At the cap, a new connection evicts the oldest one
that is still waiting or idle; when all of them are busy, the new one is closed. So a
flood of idle or half-sent connections can neither starve real clients nor run the
process out of descriptors. Should ``accept`` still fail for lack of descriptors
(EMFILE/ENFILE: something else used them up), asyncio pauses that listener for a second
and retries; the gate turns its traceback per attempt into one log line a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL

from twin_explorer.localhub.transports.tls_stream import TlsFailed, TlsTransport

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
HEADER_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
HANDSHAKES_PER_SECOND = 200.0
# Descriptors kept back from the cap for everything else the hub opens (stdio, the
# SQLite file and its WAL and shm, the listeners, the event loop, log files: about 20),
# plus what the listeners accept in one go before the gate sees any of it (below).
RESERVED_DESCRIPTORS = 32
WINDOWS_DESCRIPTORS = 2048  # no RLIMIT_NOFILE there; select() is not used by the hub
_REPORT_EVERY = 60.0  # seconds between log lines about the cap or EMFILE
_ACCEPT_FAILED = "socket.accept() out of system resource"

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


@dataclass(frozen=True)
class Limits:
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int | None = None  # None: from the descriptor limit
    handshakes_per_second: float = HANDSHAKES_PER_SECOND


def raise_descriptor_limit() -> int:
    """Raise the soft descriptor limit to the hard one; return the limit now in force."""
    try:
        import resource
    except ImportError:  # Windows
        return WINDOWS_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            logger.debug("could not raise the descriptor limit to %d: %s", hard, exc)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return soft


def accept_batch(descriptors: int) -> int:
    """The listen backlog, which is also how many connections asyncio accepts in one go
    before any of them reaches the gate: small when descriptors are scarce."""
    return max(4, min(100, descriptors // 16))


def connection_cap(descriptors: int) -> int:
    """Sockets the gate lets clients hold: a margin below the descriptor limit, room for
    one accept batch on each of the three listeners included."""
    reserve = max(RESERVED_DESCRIPTORS + 3 * accept_batch(descriptors), descriptors // 8)
    return max(8, descriptors - reserve)


class _Conn(asyncio.Protocol):
    """One accepted socket: runs TLS, then hands the stream to the listener's protocol."""

    def __init__(
        self, gate: ConnectionGate, factory: ProtocolFactory, tls: SSL.Context | None
    ) -> None:
        self.gate = gate
        self._factory = factory
        self._tls = tls
        self.raw: asyncio.Transport | None = None
        self.transport: asyncio.BaseTransport | None = None  # what the listener sees
        self.inner: Any = None
        self._session: TlsTransport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.state = "handshake"
        self.gone = False

    # -- transport side -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        if not self.gate._admit(self):
            transport.abort()
            return
        if self._tls is None:
            self._ready(transport)
            return
        self._expire_in(self.gate.limits.handshake_timeout)
        transport.pause_reading()  # the ClientHello waits in the kernel for our turn
        self.gate._handshake_in_turn(self)

    def start_handshake(self) -> None:
        """Our turn in the handshake queue: read the ClientHello and answer it."""
        if self.gone or self.raw is None:
            return
        self._session = TlsTransport(self.raw, self._tls)
        self.raw.resume_reading()

    def _ready(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.gate._by_transport[transport] = self
        self.inner = self._factory()
        self.set_state("waiting")
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        session = self._session
        if session is None:
            if self.inner is not None:
                self.inner.data_received(data)
            return
        try:
            plain = session.receive(data)
        except TlsFailed as exc:
            logger.debug("TLS failed: %s", exc)
            self.close("TLS failed")
            return
        if self.inner is None:
            if not session.handshaken:
                return
            self._ready(session)
        for chunk in plain:
            if self.gone:
                return
            self.inner.data_received(chunk)
        if session.peer_eof and not self.gone and not self.inner.eof_received():
            session.close()

    def eof_received(self) -> bool | None:
        if self.inner is None:
            self.close("closed during the TLS handshake")
            return None
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        if self.inner is not None:
            self.inner.connection_lost(exc)

    # -- gate side ------------------------------------------------------------------------

    def set_state(self, state: str) -> None:
        """handshake/waiting/idle carry a deadline and may be evicted; busy/settled not."""
        if self.gone:
            return
        self.state = state
        self.gate._evictable.pop(self, None)
        if state in ("waiting", "idle"):
            self.gate._evictable[self] = None
            limits = self.gate.limits
            self._expire_in(limits.header_timeout if state == "waiting" else limits.idle_timeout)
        else:
            self._cancel_deadline()

    def _expire_in(self, seconds: float) -> None:
        self._cancel_deadline()
        self._deadline = asyncio.get_running_loop().call_later(seconds, self.close, "timed out")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def close(self, why: str) -> None:
        if self.gone:
            return
        logger.debug("closing a %s connection: %s", self.state, why)
        for transport in (self.transport, self.raw):
            if transport is not None:
                transport.abort()
        self._gone()

    def _gone(self) -> None:
        if self.gone:
            return
        self.gone = True
        self._cancel_deadline()
        self.gate._release(self)


class ConnectionGate:
    """Accepts for every listener; see the module docstring."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits = limits or Limits()
        descriptors = raise_descriptor_limit()
        self.backlog = accept_batch(descriptors)
        self.cap = limits.max_connections or connection_cap(descriptors)
        self._conns: set[_Conn] = set()
        self._evictable: OrderedDict[_Conn, None] = OrderedDict()
        self._by_transport: dict[asyncio.BaseTransport, _Conn] = {}
        self._outbound = 0
        self._tokens = limits.handshakes_per_second
        self._tokens_at = time.monotonic()
        self._tls_queue: deque[_Conn] = deque()
        self._tls_timer: asyncio.TimerHandle | None = None
        self._last_report = {"cap": -_REPORT_EVERY, "accept": -_REPORT_EVERY}
        self._quiet: dict[str, int] = {"cap": 0, "accept": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None
        self._closed = False

    # -- listeners ------------------------------------------------------------------------

    async def serve(
        self, factory: ProtocolFactory, host: str, port: int, *, tls: SSL.Context | None = None
    ) -> asyncio.Server:
        """Listen on ``host:port`` through the gate; TLS (tls_stream) with ``tls``, the
        hub's pyOpenSSL context (runtime.tls.hub_tls_context)."""
        loop = asyncio.get_running_loop()
        self._closed = False
        self._watch_accept_errors(loop)
        return await loop.create_server(
            lambda: _Conn(self, factory, tls), host, port, backlog=self.backlog
        )

    @staticmethod
    async def stop_serving(server: asyncio.Server) -> None:
        """Close a listener from :meth:`serve` without leaking what it accepted last.

        asyncio accepts a socket, then builds its transport in a task of its own; on
        Python 3.11, should the server close in between, building fails and the accepted
        socket is left to the garbage collector. So stop accepting first, give those tasks
        their one step (the transport then exists and the gate, or the listener, closes
        it), and only then close the server.
        """
        loop = asyncio.get_running_loop()
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
        await asyncio.sleep(0)
        server.close()

    @staticmethod
    def stream_factory(
        connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
        limit: int = 2**16,
    ) -> ProtocolFactory:
        """What ``asyncio.start_server`` builds for each connection, for :meth:`serve`."""

        def factory() -> asyncio.BaseProtocol:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=limit, loop=loop)
            return asyncio.StreamReaderProtocol(reader, connected, loop=loop)

        return factory

    def close(self) -> None:
        """End every connection still open (listeners close theirs first) and stop
        filtering the loop's accept errors. Connections accepted from now on are refused."""
        self._closed = True
        for conn in list(self._conns):
            conn.close("the hub is closing")
        self._tls_queue.clear()
        if self._tls_timer is not None:
            self._tls_timer.cancel()
            self._tls_timer = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.set_exception_handler(self._previous_handler)
        self._loop = None

    # -- what listeners tell the gate ------------------------------------------------------

    def busy(self, transport: asyncio.BaseTransport) -> None:
        """A request is being served: no deadline, not evictable."""
        self._set(transport, "busy")

    def idle(self, transport: asyncio.BaseTransport) -> None:
        """Between requests: closed after ``idle_timeout`` or evicted when the cap is hit."""
        self._set(transport, "idle")

    def settled(self, transport: asyncio.BaseTransport) -> None:
        """The listener's own rules take over (MQTT keep-alive, a proxy tunnel)."""
        self._set(transport, "settled")

    def waiting(self, transport: asyncio.BaseTransport) -> None:
        """A first request is due again (a WebSocket before its protocol accepted its
        client): closed after ``header_timeout``, evicted when the cap is hit."""
        self._set(transport, "waiting")

    def _set(self, transport: asyncio.BaseTransport, state: str) -> None:
        conn = self._by_transport.get(transport)
        if conn is None:
            # A stream layered on a connection (a WebSocket) passes the state on to the
            # gate that holds its socket, whichever gate its protocol server uses.
            forward = getattr(transport, "forward_gate_state", None)
            if forward is not None:
                forward(state)
            return
        if conn is not None:
            conn.set_state(state)

    def open_outbound(self) -> bool:
        """Count a socket the hub opens itself (the proxy's upstream); False when there
        is no room. Pair a True with :meth:`close_outbound`."""
        if not self._make_room():
            return False
        self._outbound += 1
        return True

    def close_outbound(self) -> None:
        self._outbound -= 1

    @property
    def open_count(self) -> int:
        return len(self._conns) + self._outbound

    # -- internals ------------------------------------------------------------------------

    def _admit(self, conn: _Conn) -> bool:
        if self._closed or not self._make_room():
            return False
        self._conns.add(conn)
        self._evictable[conn] = None
        return True

    def _make_room(self) -> bool:
        if self.open_count < self.cap:
            return True
        if self._evictable:
            oldest, _ = self._evictable.popitem(last=False)
            self._report("cap", "closing the oldest waiting or idle connection")
            oldest.close("the connection limit was reached")
            return True
        self._report("cap", "refusing new connections until one closes")
        return False

    def _handshake_in_turn(self, conn: _Conn) -> None:
        self._tls_queue.append(conn)
        if self._tls_timer is None:
            self._start_handshakes()

    def _start_handshakes(self) -> None:
        """Start queued handshakes while the bucket has tokens; else come back later."""
        self._tls_timer = None
        rate = self.limits.handshakes_per_second
        while self._tls_queue:
            if self._tls_queue[0].gone:  # timed out or evicted while it waited
                self._tls_queue.popleft()
                continue
            now = time.monotonic()
            self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / rate
                self._tls_timer = asyncio.get_running_loop().call_later(
                    wait, self._start_handshakes
                )
                return
            self._tokens -= 1
            self._tls_queue.popleft().start_handshake()

    def _release(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        self._evictable.pop(conn, None)
        if conn.transport is not None:
            self._by_transport.pop(conn.transport, None)

    def _report(self, what: str, detail: str) -> None:
        """One log line a minute at most, saying how many went unsaid."""
        now = time.monotonic()
        if now - self._last_report[what] < _REPORT_EVERY:
            self._quiet[what] += 1
            return
        more = self._quiet[what]
        self._quiet[what] = 0
        self._last_report[what] = now
        since = f" ({more} more since the last report)" if more else ""
        if what == "cap":
            logger.warning("%d client connections open, the limit: %s%s", self.cap, detail, since)
        else:
            logger.error("accepting connections failed: %s; retrying%s", detail, since)

    def _watch_accept_errors(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            return
        self._loop = loop
        self._previous_handler = loop.get_exception_handler()
        previous = self._previous_handler

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == _ACCEPT_FAILED:
                exc = context.get("exception")
                detail = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else exc
                self._report("accept", f"{detail} (asyncio pauses that listener for a second)")
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)


class GatedServer:
    """What every device transport's listener shares: listening through the hub's gate
    (TLS, timeouts, the connection cap), its port, and ``async with``. Subclasses give
    ``name``, ``scheme``, ``_start(reader, writer, via)`` (the connection's task, or None
    when closed) and ``close()`` (which calls :meth:`_stop_listening` first)."""

    name = "?"
    scheme = "?"  # what a TLS connection of this listener is called in logs ("mqtts")

    def __init__(self, gate: ConnectionGate | None, tls: Any) -> None:
        # The hub's shared gate (one cap for all listeners), or one of our own.
        self._gate = gate or ConnectionGate()
        self._ssl = tls
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._closed = False

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        raise NotImplementedError

    def _start(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, via: str
    ) -> asyncio.Task[None] | None:
        raise NotImplementedError

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback: the task exists the moment the connection does, so close()
        # cannot miss a connection whose coroutine has not started yet.
        self._start(reader, writer, self.scheme)

    async def serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, via: str = ""
    ) -> None:
        """Serve one client over a stream already past TLS (a WebSocket's, see
        ``transports/websocket``) until it ends; the TCP listener uses the same path."""
        await until_served(self._start(reader, writer, via or self.scheme))

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} server not started")
        return self._port

    def _check_startable(self) -> None:
        if self._server is not None or self._closed:
            raise RuntimeError(f"{self.name} server already started or closed")

    async def _listen(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: the OS chooses) through the gate; the bound port."""
        self._check_startable()
        self._server = await self._gate.serve(
            self._gate.stream_factory(self._accept), host, port, tls=self._ssl
        )
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("%s server listening on %s:%d", self.name, host, self._port)
        return self._port

    async def _stop_listening(self) -> asyncio.Server | None:
        """Mark closed and stop accepting; the server, for ``wait_closed`` at the end."""
        self._closed = True
        server, self._server = self._server, None
        if server is not None:
            await self._gate.stop_serving(server)
        return server


def abort_when_done(task: asyncio.Task[Any], writer: asyncio.StreamWriter) -> None:
    """Abort the connection once ``task`` ends, should it not have closed it itself: a
    task cancelled before its first step (the listener closing) never runs its
    ``finally``, and its stream would be left to the garbage collector."""

    def done(_: asyncio.Task[Any]) -> None:
        if not writer.transport.is_closing():
            writer.transport.abort()

    task.add_done_callback(done)


async def until_served(task: asyncio.Task[Any] | None) -> None:
    """Wait for a connection's task for a stream handler (``serve_stream``, a WebSocket's):
    our own cancellation cancels the connection too and passes on; the listener's
    ``close()`` cancelling the connection ends the wait quietly."""
    if task is None:
        return
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


@contextlib.contextmanager
def busy_while(gate: ConnectionGate | None, transport: asyncio.BaseTransport | None):
    """Mark a REST connection busy for one request, idle after it."""
    if gate is None or transport is None:
        yield
        return
    gate.busy(transport)
    try:
        yield
    finally:
        gate.idle(transport)
