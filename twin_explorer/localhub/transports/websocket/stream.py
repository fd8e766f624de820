"""A WebSocket as a byte stream: an asyncio ``StreamReader``/``StreamWriter`` pair over it.

MQTT and AMQP over WebSockets (IoT Hub's ``/$iothub/websocket``) carry the protocol's
bytes in binary messages with no regard to packet bounds: a packet may span messages,
a message may hold several packets. So the protocol engines need nothing WebSocket-aware;
:func:`open_stream` gives them the same reader and writer a TCP connection gives, backed
by a :class:`WebSocketTransport`:

- in: each binary message is fed to the reader as it comes; a text message is refused
  (close 1003), as IoT Hub's endpoint takes binary only. aiohttp reassembles fragmented
  messages and closes with 1009 one over its ``max_msg_size``. Reading pauses while the
  reader holds more than its limit (the protocol is behind), so a flood is not buffered.
- out: writes collect in a buffer that one task sends as binary messages of at most
  ``chunk`` bytes, waiting on the socket; past the high-water mark the writer's
  ``drain()`` waits (``pause_writing``), as over TCP.
- ``close()`` sends what is buffered, then a close frame; ``abort()`` drops the socket.
  A close from the peer, or the socket going, is end of stream for the reader.
- ``idle_timeout``: nothing at all from the peer for that long closes the stream (1001),
  a backstop above the protocols' own keep-alive rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024  # the largest binary message we send
HIGH_WATER = 256 * 1024
READ_LIMIT = 64 * 1024  # the reader pauses the socket at twice this much unread
CLOSE_TIMEOUT = 5.0
# The peer may stay silent this long. IoT Hub caps MQTT keep-alive at 1767 s and drops
# a client silent for 1.5 times that; AMQP peers send heartbeats well within it.
IDLE_TIMEOUT = 1.5 * 1767 + 10
# peer_certificates: the TLS client chain (X.509 devices over WebSockets, A.14).
_EXTRA = (
    "peername",
    "sockname",
    "sslcontext",
    "ssl_object",
    "peercert",
    "cipher",
    "peer_certificates",
)


class WebSocketTransport(asyncio.Transport):
    """An asyncio transport whose bytes travel in WebSocket binary messages."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        base: asyncio.BaseTransport | None,
        *,
        chunk: int = CHUNK,
        idle_timeout: float = IDLE_TIMEOUT,
        on_gate_state: Callable[[str], None] | None = None,
    ) -> None:
        self._on_gate_state = on_gate_state
        self._base = base  # the TLS connection the WebSocket runs on
        # Read now: an SSL transport answers nothing once it is closed.
        super().__init__({name: base.get_extra_info(name) for name in _EXTRA} if base else {})
        self._ws = ws
        self._chunk = chunk
        self._idle_timeout = idle_timeout
        self._protocol: asyncio.BaseProtocol | None = None
        self._out = bytearray()
        self._more_out = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._high = HIGH_WATER
        self._low = HIGH_WATER // 4
        self._writing_paused = False
        self._closing = False
        self._lost = False
        self.close_reason: str | None = None

    def forward_gate_state(self, state: str) -> None:
        """What a protocol server tells its gate about this stream ("settled": its client
        is accepted) goes to the gate that holds the WebSocket's connection."""
        if self._on_gate_state is not None:
            self._on_gate_state(state)

    # -- asyncio.Transport ------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send what is buffered, then close the WebSocket."""
        if not self._closing:
            self._closing = True
            self._more_out.set()

    def abort(self) -> None:
        """Drop the connection now, unsent data with it."""
        self._closing = True
        self._out.clear()
        if self._base is not None:
            self._base.abort()
        self._more_out.set()
        self._reading.set()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._out += data
        self._more_out.set()
        if not self._writing_paused and len(self._out) > self._high:
            self._writing_paused = True
            self._call_protocol("pause_writing")

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("a WebSocket stream cannot half-close; close it")

    def get_write_buffer_size(self) -> int:
        base = self._base
        queued = 0
        # A closed SSL transport has no buffer left to ask about (it raises instead).
        if isinstance(base, asyncio.WriteTransport) and not base.is_closing():
            queued = base.get_write_buffer_size()
        return len(self._out) + queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set()

    # -- the pumps ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Move bytes both ways until the stream is over, then tell the protocol."""
        sending = asyncio.get_running_loop().create_task(self._send())
        try:
            refusal = await self._receive()
            # The peer is done sending (or refused): the protocol hears it at once, and
            # what it still sends goes out before the close.
            self._call_protocol("eof_received")
            if refusal is not None:
                await self._close_ws(*refusal)
            await sending
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending
            if not self._ws.closed and not self._lost:
                self._base_abort()
            self._connection_lost()

    async def _receive(self) -> tuple[int, str] | None:
        """Feed the protocol until the peer is done; a close we owe it (code, why)."""
        ws = self._ws
        while not ws.closed:
            await self._reading.wait()
            try:
                message = await ws.receive(timeout=self._idle_timeout)
            except TimeoutError:
                self._note(f"idle for {self._idle_timeout:g}s")
                return WSCloseCode.GOING_AWAY, "idle"
            if message.type is WSMsgType.BINARY:
                self._call_protocol("data_received", message.data)
            elif message.type is WSMsgType.TEXT:
                self._note("a text message (binary only)")
                return WSCloseCode.UNSUPPORTED_DATA, "binary messages only"
            elif message.type is WSMsgType.ERROR:
                self._note(f"error: {message.data!r}")  # e.g. a message over the limit
                return None
            else:  # CLOSE, CLOSING, CLOSED
                self._note("closed" if self._closing else "closed by the peer")
                return None
        return None

    async def _send(self) -> None:
        ws = self._ws
        while True:
            await self._more_out.wait()
            self._more_out.clear()
            while self._out and not ws.closed:
                data = bytes(self._out[: self._chunk])
                del self._out[: self._chunk]
                try:
                    await ws.send_bytes(data)
                except (ConnectionError, RuntimeError) as exc:  # the socket went
                    self._note(f"send failed: {exc!r}")
                    self._out.clear()
                    self._lost = True
                    return
                self._maybe_resume_writing()
            self._maybe_resume_writing()
            if self._closing:
                await self._close_ws(WSCloseCode.OK, "")
                return

    def _maybe_resume_writing(self) -> None:
        if self._writing_paused and len(self._out) <= self._low:
            self._writing_paused = False
            self._call_protocol("resume_writing")

    async def _close_ws(self, code: int, message: str) -> None:
        self._closing = True
        self._more_out.set()
        if self._ws.closed:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._ws.close(code=code, message=message.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            self._base_abort()

    def _base_abort(self) -> None:
        if self._base is not None:
            self._base.abort()

    def _note(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            peer = self.get_extra_info("peername")
            logger.debug("WebSocket stream from %s ends: %s", peer, reason)

    def _connection_lost(self) -> None:
        self._closing = True
        self._reading.set()
        if self._writing_paused:  # a writer waiting in drain() wakes to a closed stream
            self._writing_paused = False
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.connection_lost(None)

    def _call_protocol(self, name: str, *args: Any) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        try:
            getattr(protocol, name)(*args)
        except Exception:
            logger.exception("the stream's protocol failed in %s", name)
            self.abort()


def open_stream(
    ws: web.WebSocketResponse,
    base: asyncio.BaseTransport | None,
    *,
    chunk: int = CHUNK,
    idle_timeout: float = IDLE_TIMEOUT,
    read_limit: int = READ_LIMIT,
    on_gate_state: Callable[[str], None] | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, WebSocketTransport]:
    """A reader and writer over a prepared ``ws``; run ``transport.run()`` beside them."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=read_limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport = WebSocketTransport(
        ws, base, chunk=chunk, idle_timeout=idle_timeout, on_gate_state=on_gate_state
    )
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer, transport
