"""A raw WebSocket client for tests: exactly the frames a test wants (fragments, text
frames, oversized messages, a close in the middle of a packet), over TLS to the hub."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 15.0
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


async def until(predicate: Callable[[], object], within: float = TIMEOUT, what: str = "") -> None:
    """Wait for ``predicate()`` to hold, letting the loop run in between."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]


class HandshakeRefused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status}: {body!r}")
        self.status = status
        self.body = body


class RawWebSocket:
    """One client connection; ``open()`` does TLS and the upgrade."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.subprotocol: str | None = None

    @classmethod
    async def open(
        cls,
        port: int,
        ca_cert: Path,
        subprotocols: tuple[str, ...] = ("mqtt",),
        path: str = "/$iothub/websocket",
        *,
        upgrade: bool = True,
        rcvbuf: int | None = None,
    ) -> RawWebSocket:
        """``rcvbuf``: a small receive buffer keeps the TCP window small (a slow reader)."""
        tls = ssl.create_default_context(cafile=str(ca_cert))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname="localhost"
        )
        self = cls(reader, writer)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", "Host: localhost:443"]
        if upgrade:
            lines += [
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13",
            ]
        if subprotocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (
                line.decode().partition(":") for line in head.split(b"\r\n")[1:] if line
            )
        }
        if status != 101:
            length = int(headers.get("content-length", "0"))
            async with asyncio.timeout(TIMEOUT):
                body = await reader.readexactly(length)
            writer.close()
            raise HandshakeRefused(status, body)
        self.subprotocol = headers.get("sec-websocket-protocol")
        return self

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        """A masked frame, as a client must send."""
        head = bytes([(0x80 if fin else 0) | opcode])
        size = len(payload)
        if size < 126:
            head += bytes([0x80 | size])
        elif size < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        keys = (mask * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload) ^ int.from_bytes(keys)).to_bytes(size)
        self.writer.write(head + mask + masked)

    def send(self, payload: bytes) -> None:
        self.send_frame(BINARY, payload)

    def close(self, code: int = 1000) -> None:
        self.send_frame(CLOSE, struct.pack("!H", code))

    async def recv_frame(self, within: float = TIMEOUT) -> Frame | None:
        """The next frame from the hub; None once it closed the connection."""
        try:
            async with asyncio.timeout(within):
                first, second = await self.reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return None
        return Frame(first & 0x0F, payload, bool(first & 0x80))

    async def recv_until_close(self, within: float = TIMEOUT) -> tuple[bytes, Frame | None]:
        """Binary data received until the hub's close frame (or the end); both."""
        data = b""
        async with asyncio.timeout(within):
            while True:
                frame = await self.recv_frame(within)
                if frame is None or frame.opcode == CLOSE:
                    return data, frame
                if frame.opcode in (BINARY, CONTINUATION):
                    data += frame.payload

    async def recv_bytes(self, count: int, within: float = TIMEOUT) -> bytes:
        data = b""
        async with asyncio.timeout(within):
            while len(data) < count:
                frame = await self.recv_frame(within)
                assert frame is not None and frame.opcode != CLOSE, frame
                if frame.opcode in (BINARY, CONTINUATION):
                    data += frame.payload
        return data

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
