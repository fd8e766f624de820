"""An HTTP CONNECT proxy in front of the local hub, so SDK clients reach it on any port.

The device SDK always dials port 8883 (443 for WebSockets); the supported way to reach a
hub on another port is an HTTP CONNECT proxy, via ``proxy_options=ProxyOptions("HTTP",
...)`` or ``MQTT_PROXY=http://host:port`` (protocol reference A.1). TLS stays end to end:
the client handshakes with the hub through the tunnel, with SNI and hostname ``localhost``.

The proxy is no open relay: it only connects where ``routes`` maps the requested
``host:port``; everything else gets 403 before any connection is attempted.

Request parsing is a pure function (:func:`parse_connect_request`); :class:`ConnectProxy`
only moves bytes and owns every task and socket it creates until :meth:`ConnectProxy.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from twin_explorer.localhub.transports.listeners import (
    ConnectionGate,
    Limits,
    abort_when_done,
)

logger = logging.getLogger(__name__)

Route = Callable[[str, int], tuple[str, int] | None]

MQTT_PORT = 8883
HTTPS_PORT = 443

MAX_HEADER_BYTES = 8192
_CHUNK = 64 * 1024
_CLOSE_TIMEOUT = 5.0

# One write, nothing after it: PySocks reads just the first line through a buffered file
# and drops whatever else that read returned, so the blank line must travel with it.
ESTABLISHED = b"HTTP/1.1 200 Connection Established\r\n\r\n"
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/1\.[01]")
_REG_NAME = re.compile(r"[A-Za-z0-9._-]+")
_PORT = re.compile(r"[0-9]{1,5}")
# Header values: visible ASCII, space and tab only.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


@dataclass(frozen=True)
class ConnectRequest:
    """The target of a CONNECT request; IPv6 hosts come without brackets."""

    host: str
    port: int


class ProxyRequestError(Exception):
    """A request the proxy refuses, with the HTTP status to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def parse_connect_request(head: bytes) -> ConnectRequest:
    """Parse a request head (request line and headers, ending in a blank line).

    Only ``CONNECT host:port HTTP/1.x`` in authority form is accepted; other methods raise
    :class:`ProxyRequestError` 405, anything malformed 400. Header fields are checked for
    syntax and otherwise ignored (``Proxy-Authorization`` included: the proxy is loopback
    only and its routes are the access control).
    """
    if not head.endswith(b"\r\n\r\n"):
        raise ProxyRequestError(400, "request head not terminated")
    try:
        text = head[:-4].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyRequestError(400, "non-ASCII request head") from None
    request_line, *fields = text.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[2]):
        raise ProxyRequestError(400, "malformed request line")
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise ProxyRequestError(400, "malformed header field")
    method, target, _ = parts
    if method != "CONNECT":
        raise ProxyRequestError(405, f"method {method} not supported")
    return _parse_authority(target)


def _parse_authority(target: str) -> ConnectRequest:
    if target.startswith("["):
        host, bracket, rest = target[1:].partition("]")
        if not bracket or not rest.startswith(":") or not _is_ipv6(host):
            raise ProxyRequestError(400, "malformed IPv6 target")
        port_text = rest[1:]
    else:
        host, colon, port_text = target.rpartition(":")
        if not colon:
            raise ProxyRequestError(400, "target lacks a port")
        # PySocks sends IPv6 literals unbracketed ("CONNECT ::1:443"); the last colon
        # still separates the port.
        if ":" in host and not _is_ipv6(host):
            raise ProxyRequestError(400, "malformed target host")
        if ":" not in host and not _REG_NAME.fullmatch(host):
            raise ProxyRequestError(400, "malformed target host")
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise ProxyRequestError(400, "malformed target port")
    return ConnectRequest(host, int(port_text))


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def _error_response(status: int) -> bytes:
    allow = "Allow: CONNECT\r\n" if status == 405 else ""
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n{allow}"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def _normalize_host(host: str) -> str:
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.rstrip(".").lower()


def hub_routes(
    hostnames: Iterable[str],
    mqtt: tuple[str, int] | None,
    rest: tuple[str, int],
) -> Route:
    """Routes for one hub: ``<hostname>:8883`` to MQTT and ``<hostname>:443`` to REST.

    Host names match case-insensitively (IP literals by value, ``[::1]`` equals ``::1``).
    ``mqtt=None`` refuses 8883. Note the device SDK's MQTT-over-WebSockets also dials 443
    (reference A.13), so it reaches whatever serves ``rest``.
    """
    return port_routes(hostnames, {MQTT_PORT: mqtt, HTTPS_PORT: rest})


def port_routes(hostnames: Iterable[str], table: Mapping[int, tuple[str, int] | None]) -> Route:
    """Routes ``<hostname>:<IoT Hub port>`` to where the listener for that port listens."""
    names = frozenset(_normalize_host(name) for name in hostnames)
    table = dict(table)

    def route(host: str, port: int) -> tuple[str, int] | None:
        if _normalize_host(host) not in names:
            return None
        return table.get(port)

    return route


class ConnectProxy:
    """An asyncio HTTP CONNECT proxy that only tunnels to what ``routes`` returns.

    Every connection runs in a task the proxy owns; :meth:`close` stops listening, ends
    every live tunnel (both sockets) and waits for those tasks, so nothing outlives it.
    """

    name = "proxy"
    iothub_port: int | None = None  # it routes to the hub's ports; no client dials it as one

    def __init__(
        self,
        routes: Route,
        *,
        header_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        max_header_bytes: int = MAX_HEADER_BYTES,
        gate: ConnectionGate | None = None,
    ) -> None:
        self._routes = routes
        # The hub's shared gate (one cap for all listeners), or one of our own; its
        # header timeout is ours too, so the slower of the two never matters.
        self._gate = gate or ConnectionGate(Limits(header_timeout=header_timeout))
        self._header_timeout = header_timeout
        self._connect_timeout = connect_timeout
        self._max_header_bytes = max_header_bytes
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("proxy not started")
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 lets the OS choose) and return the bound port."""
        if self._server is not None or self._closed:
            raise RuntimeError("proxy already started")
        # The stream limit caps the request head; tunnels read in bounded chunks anyway.
        self._server = await self._gate.serve(
            self._gate.stream_factory(self._accept, limit=self._max_header_bytes), host, port
        )
        self._port = self._server.sockets[0].getsockname()[1]
        logger.debug("CONNECT proxy listening on %s:%d", host, self._port)
        return self._port

    async def close(self) -> None:
        """Stop listening, end all tunnels and wait until every task has finished."""
        self._closed = True
        server, self._server = self._server, None
        if server is not None:
            await self._gate.stop_serving(server)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: the task is registered the moment the
        # connection is accepted, so close() cannot miss one that has not started yet.
        if self._closed:
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        abort_when_done(task, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        upstream: asyncio.StreamWriter | None = None
        graceful = False
        if not self._gate.open_outbound():  # the upstream socket counts against the cap
            await _close_stream(writer, graceful=False)
            return
        try:
            tunnel = await self._open_tunnel(reader, writer, peer)
            graceful = tunnel is None
            if tunnel is not None:
                up_reader, upstream = tunnel
                graceful = await _splice(reader, writer, up_reader, upstream)
        except (OSError, asyncio.IncompleteReadError) as exc:
            logger.debug("proxy connection from %s failed: %r", peer, exc)
        except Exception:
            logger.exception("proxy connection from %s crashed", peer)
        finally:
            self._gate.close_outbound()
            try:
                for stream in (writer, upstream):
                    if stream is not None:
                        await _close_stream(stream, graceful=graceful)
            finally:
                # Cancelled (the proxy closing) while the first stream closed: the
                # upstream one must not be left to the garbage collector.
                if upstream is not None and not upstream.transport.is_closing():
                    upstream.transport.abort()

    async def _open_tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Handle the request; return the upstream streams, or None after refusing."""
        # asyncio.timeout rather than wait_for: on 3.11 wait_for can swallow the
        # cancellation close() sends if the inner call finished at the same moment.
        try:
            async with asyncio.timeout(self._header_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
            request = parse_connect_request(head)
        except TimeoutError:
            logger.debug("proxy client %s sent no complete request in time", peer)
            return None
        except asyncio.LimitOverrunError:
            return await _refuse(writer, 400, "request head too large", peer)
        except ProxyRequestError as exc:
            return await _refuse(writer, exc.status, exc.detail, peer)

        target = self._routes(request.host, request.port)
        if target is None:
            detail = f"no route to {request.host}:{request.port}"
            return await _refuse(writer, 403, detail, peer)
        try:
            async with asyncio.timeout(self._connect_timeout):
                up_reader, upstream = await asyncio.open_connection(*target, limit=_CHUNK)
        except TimeoutError:
            return await _refuse(writer, 504, f"connect to {target} timed out", peer)
        except OSError as exc:
            return await _refuse(writer, 502, f"connect to {target} failed: {exc}", peer)
        logger.debug("tunnel %s -> %s:%d -> %s", peer, request.host, request.port, target)
        self._gate.settled(writer.transport)  # the hub's listener behind it times it out
        try:
            writer.write(ESTABLISHED)
            await writer.drain()
        except BaseException:
            await _close_stream(upstream, graceful=False)
            raise
        return up_reader, upstream


async def _refuse(writer: asyncio.StreamWriter, status: int, detail: str, peer: object) -> None:
    logger.debug("proxy refuses %s with %d: %s", peer, status, detail)
    writer.write(_error_response(status))
    await writer.drain()


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> bool:
    """Copy both ways until both directions end; True if neither failed.

    An EOF in one direction is passed on as a half-close and the other direction keeps
    flowing (TLS close_notify and MQTT DISCONNECT rely on it). An error in either
    direction ends both at once.
    """
    pumps = [
        asyncio.create_task(_pump(client_reader, up_writer)),
        asyncio.create_task(_pump(up_reader, client_writer)),
    ]
    try:
        done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    failed = [task.exception() for task in done if task.exception() is not None]
    if failed:
        logger.debug("tunnel broken: %r", failed[0])
    return not failed and not pending


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while data := await src.read(_CHUNK):
        dst.write(data)
        await dst.drain()  # backpressure: never buffer more than the peer takes
    if dst.can_write_eof() and not dst.is_closing():
        dst.write_eof()


async def _close_stream(writer: asyncio.StreamWriter, *, graceful: bool) -> None:
    """Close a stream and wait until its socket is gone.

    A graceful close flushes pending data first, but a peer that stops reading gets
    aborted after a bound, and so does everything when the caller is cancelled, so this
    never hangs and never leaves a socket behind.
    """
    if graceful:
        writer.close()
    else:
        writer.transport.abort()
    # asyncio.wait, not wait_for: a timeout must not cancel the protocol's close future.
    closed = asyncio.ensure_future(writer.wait_closed())
    try:
        await asyncio.wait({closed}, timeout=_CLOSE_TIMEOUT)
    finally:
        if not closed.done():
            writer.transport.abort()
        with contextlib.suppress(OSError):
            await closed
