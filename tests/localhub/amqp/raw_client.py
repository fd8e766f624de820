"""A minimal AMQP 1.0 client over the hub's own codec, for what the SDKs cannot do.

Tests use it to try what no SDK would (another identity's link, a device token on a
service node, a client that grants no credit or floods) and the benchmark to hold
hundreds of connections cheaply. One session on channel 0; links by handle. Frames are
built and read with ``protocols.amqp`` (performatives always full length), so it also
checks the codec against the engine from the other side.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    Attach,
    Begin,
    Close,
    Data,
    Detach,
    Disposition,
    Flow,
    Message,
    Open,
    Properties,
    SaslInit,
    Source,
    Symbol,
    Target,
    Transfer,
    Value,
    decode_message,
    encode,
    encode_message,
)
from twin_explorer.localhub.protocols.amqp.types import decode_value

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
TIMEOUT = 20.0
SENDER, RECEIVER = False, True  # Attach.role


def frame(performative: Any, payload: bytes = b"", *, channel: int = 0, kind: int = 0) -> bytes:
    body = encode(performative) + payload
    return struct.pack(">IBBH", 8 + len(body), 2, kind, channel) + body


@dataclass
class RawLink:
    handle: int
    address: str
    role: bool  # ours: SENDER or RECEIVER
    attached: asyncio.Future[Attach]
    detached: asyncio.Future[Detach]
    credit: int = 0
    delivery_count: int = 0
    messages: asyncio.Queue[tuple[Transfer, Message]] = field(default_factory=asyncio.Queue)
    credit_changed: asyncio.Event = field(default_factory=asyncio.Event)


class RawClient:
    """One connection. ``await RawClient.connect(port, tls)`` then attach, send, receive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.links: dict[int, RawLink] = {}
        self._by_remote: dict[int, RawLink] = {}
        self._handles = itertools.count()
        self._delivery_ids = itertools.count()
        self._outcomes: dict[int, asyncio.Future[Any]] = {}
        self.closed: asyncio.Future[Close | None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self.read_paused = asyncio.Event()
        self.read_paused.set()  # set: reading
        self.heartbeats = 0  # empty frames the hub sent
        self.heartbeat = asyncio.Event()  # set at each

    @classmethod
    async def connect(
        cls,
        port: int,
        tls: ssl.SSLContext | None,
        *,
        sasl: tuple[str, bytes | None] | None = None,
        host: str = "127.0.0.1",
        proxy: int | None = None,
        idle_timeout_ms: int | None = None,
    ) -> RawClient:
        """To ``host:port`` (TLS unless ``tls`` is None), or through the HTTP CONNECT
        proxy on port ``proxy`` to ``localhost:port``."""
        if proxy is None:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=None if tls is None else "localhost"
            )
        else:
            reader, writer = await asyncio.open_connection(host, proxy)
            writer.write(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(head.decode(errors="replace"))
            assert tls is not None
            await writer.start_tls(tls, server_hostname="localhost")
        if sasl is not None:
            writer.write(SASL_HEADER)
            assert await reader.readexactly(8) == SASL_HEADER
            await _read_frame(reader)  # sasl-mechanisms
            mechanism, response = sasl
            writer.write(frame(SaslInit(Symbol(mechanism), response, "localhost"), kind=1))
            outcome, _ = await _read_frame(reader)
            if outcome.code != 0:
                writer.close()
                raise PermissionError(f"SASL outcome {outcome.code}")
        writer.write(AMQP_HEADER)
        assert await reader.readexactly(8) == AMQP_HEADER
        client = cls(reader, writer)
        open_ = Open(container_id=str(uuid.uuid4()), hostname="localhost")
        open_.idle_timeout = idle_timeout_ms
        writer.write(frame(open_))
        writer.write(frame(Begin(None, 0, 5000, 5000)))
        client._task = asyncio.get_running_loop().create_task(client._read_forever())
        return client

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(Close()))
            self.writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- links ---------------------------------------------------------------------------

    async def attach(self, address: str, role: bool, *, credit: int = 100) -> RawLink:
        """Attach; the link once the hub answered. Its ``detached`` is done at once when the
        hub refused it (attach reply with a null terminus, then detach with the error)."""
        loop = asyncio.get_running_loop()
        link = RawLink(
            next(self._handles), address, role, loop.create_future(), loop.create_future()
        )
        self.links[link.handle] = link
        source = Source(address=address) if role == RECEIVER else Source(address="raw")
        target = Target(address=address) if role == SENDER else Target(address="raw")
        self.writer.write(
            frame(
                Attach(
                    name=f"{address}-{link.handle}",
                    handle=link.handle,
                    role=role,
                    source=source,
                    target=target,
                    initial_delivery_count=0 if role == SENDER else None,
                )
            )
        )
        async with asyncio.timeout(TIMEOUT):
            await link.attached
        if role == RECEIVER and credit:
            self.flow(link, credit)
        return link

    def flow(self, link: RawLink, credit: int) -> None:
        link.credit = credit
        self.writer.write(frame(Flow(0, 5000, 0, 5000, link.handle, link.delivery_count, credit)))

    async def send(self, link: RawLink, message: Message, *, settled: bool = False) -> Any:
        """Transfer once there is credit; the hub's outcome (None when sent settled)."""
        async with asyncio.timeout(TIMEOUT):
            while link.credit <= 0:
                link.credit_changed.clear()
                await link.credit_changed.wait()
        link.credit -= 1
        link.delivery_count += 1
        delivery_id = next(self._delivery_ids)
        outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not settled:
            self._outcomes[delivery_id] = outcome
        transfer = Transfer(
            handle=link.handle,
            delivery_id=delivery_id,
            delivery_tag=delivery_id.to_bytes(4, "big"),
            message_format=0,
            settled=settled,
        )
        self.writer.write(frame(transfer, encode_message(message)))
        if settled:
            return None
        async with asyncio.timeout(TIMEOUT):
            return await outcome

    def settle(self, transfer: Transfer, outcome: Any = None) -> None:
        self.writer.write(
            frame(Disposition(True, transfer.delivery_id, None, True, outcome or Accepted()))
        )

    async def put_token(
        self,
        token: str,
        audience: str = "localhost",
        token_type: str = "servicebus.windows.net:sastoken",
    ) -> tuple[int, str]:
        """CBS put-token on links of its own (attached once); (status-code, description)."""
        if not hasattr(self, "_cbs"):
            self._cbs = (
                await self.attach("$cbs", SENDER),
                await self.attach("$cbs", RECEIVER),
            )
        sender, receiver = self._cbs
        request = Message(
            properties=Properties(message_id=str(uuid.uuid4()), to="$cbs", reply_to="cbs"),
            application_properties={
                "operation": "put-token",
                "type": token_type,
                "name": audience,
            },
            body=Value(token),
        )
        await self.send(sender, request)
        async with asyncio.timeout(TIMEOUT):
            _, reply = await receiver.messages.get()
        props = reply.application_properties or {}
        return int(props["status-code"]), str(props.get("status-description"))

    # -- reading -------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        try:
            while True:
                await self.read_paused.wait()
                performative, payload = await _read_frame(self.reader)
                if performative is None:
                    self.heartbeats += 1
                    self.heartbeat.set()
                else:
                    self._on_frame(performative, payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
            for link in self.links.values():
                for future in (link.attached, link.detached):
                    if not future.done():
                        future.cancel()

    def _on_frame(self, performative: Any, payload: bytes) -> None:
        match performative:
            case Attach():
                link = self.links[_our_handle(self, performative)]
                self._by_remote[performative.handle] = link
                if not link.attached.done():
                    link.attached.set_result(performative)
            case Flow(handle=handle) if handle is not None:
                link = self._by_remote.get(handle)
                if link is not None and link.role == SENDER:
                    link.credit = (
                        (performative.delivery_count or 0)
                        + (performative.link_credit or 0)
                        - link.delivery_count
                    )
                    link.credit_changed.set()
            case Transfer():
                link = self._by_remote[performative.handle]
                link.delivery_count += 1
                link.messages.put_nowait((performative, decode_message(payload)))
            case Disposition():
                for delivery_id in range(
                    performative.first, (performative.last or performative.first) + 1
                ):
                    future = self._outcomes.pop(delivery_id, None)
                    if future is not None and not future.done():
                        future.set_result(performative.state)
            case Detach():
                link = self._by_remote.get(performative.handle)
                if link is not None and not link.detached.done():
                    link.detached.set_result(performative)
            case Close():
                if not self.closed.done():
                    self.closed.set_result(performative)


def _our_handle(client: RawClient, attach: Attach) -> int:
    """Attach replies carry the link's name; ours is ``<address>-<handle>``."""
    return int(attach.name.rsplit("-", 1)[1])


async def _read_frame(reader: asyncio.StreamReader) -> tuple[Any, bytes]:
    """The next frame's performative and payload; (None, b"") for an empty frame."""
    head = await reader.readexactly(8)
    size, doff, _kind, _channel = struct.unpack(">IBBH", head)
    body = await reader.readexactly(size - 8)
    body = body[doff * 4 - 8 :]
    if not body:
        return None, b""  # a heartbeat
    performative, pos = decode_value(body, 0)
    return performative, body[pos:]


def data_message(body: bytes, **properties: Any) -> Message:
    return Message(properties=Properties(**properties) if properties else None, body=[Data(body)])
