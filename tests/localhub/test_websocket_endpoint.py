"""The WebSocket endpoint and its byte-stream adapter, on a real hub, with a raw client
that sends exactly the frames a test wants.

Besides MQTT, the tests register an ``echo`` subprotocol on the hub's own handler
registry: a ``serve_stream`` that writes back what it reads, draining as it goes, so what
the adapter does with frames, limits and backpressure shows byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from azure.iot.device import ProxyOptions

from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    ensure_identity,
    identity_password,
    sdk_client,
    watch_log,
)
from tests.localhub.ws_support import (
    BINARY,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    HandshakeRefused,
    RawWebSocket,
    until,
)
from twin_explorer.localhub.protocols.mqtt import encode
from twin_explorer.localhub.protocols.mqtt.packets import Connect, Publish
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.transports.listeners import Limits
from twin_explorer.localhub.transports.websocket import WebSocketLimits


class Echo:
    """A stream handler that echoes; it notes how it was reached, how much the transport
    ever held unsent, and whether its drain() ever had to wait."""

    def __init__(self) -> None:
        self.vias: list[str] = []
        self.ended = asyncio.Event()
        self.held_back = asyncio.Event()
        self.received = 0
        self.max_unsent = 0

    async def __call__(self, reader: Any, writer: Any, *, via: str) -> None:
        self.vias.append(via)
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                writer.write(data)
                self.max_unsent = max(self.max_unsent, writer.transport.get_write_buffer_size())
                draining = asyncio.ensure_future(writer.drain())
                await asyncio.sleep(0)  # one step: a drain with nothing to wait for is done
                if not draining.done():
                    self.held_back.set()
                await draining
        finally:
            self.ended.set()


Hub = tuple[HubServer, Echo]


@pytest_asyncio.fixture
async def start_hub(hub_data_dir) -> AsyncIterator[Callable[..., Any]]:
    """``await start_hub(limits=..., websocket_limits=...)``: a hub with ``echo`` too."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> Hub:
            server = HubServer(
                hub_data_dir(),
                rest_port=0,
                mqtt_port=0,
                amqp_port=0,
                proxy_port=0,
                **options,
            )
            await stack.enter_async_context(server)
            echo = Echo()
            server.stream_handlers.register("echo", echo)
            return server, echo

        yield start


async def _open(hub: HubServer, *subprotocols: str, **kwargs: Any) -> RawWebSocket:
    return await RawWebSocket.open(
        hub.rest_port, hub.certificates.ca_cert, subprotocols or ("echo",), **kwargs
    )


# --- the handshake --------------------------------------------------------------------


async def test_the_first_offered_subprotocol_served_is_chosen(start_hub) -> None:
    hub, echo = await start_hub()
    ws = await _open(hub, "mqttv5", "echo", "mqtt")
    assert ws.subprotocol == "echo"
    ws.send(b"x")
    assert await ws.recv_bytes(1) == b"x"
    assert echo.vias == ["wss"]
    await ws.aclose()


@pytest.mark.parametrize("offered", [(), ("foo", "mqttv5")])
async def test_a_handshake_without_a_served_subprotocol_is_refused_saying_why(
    start_hub, offered: tuple[str, ...]
) -> None:
    hub, _ = await start_hub()
    with pytest.raises(HandshakeRefused) as refused:
        await RawWebSocket.open(hub.rest_port, hub.certificates.ca_cert, offered)
    assert refused.value.status == 400
    message = refused.value.body.decode()
    assert "subprotocol must be mqtt or AMQPWSB10 or echo" in message
    assert ("offered foo, mqttv5" if offered else "offered none") in message


async def test_a_plain_get_is_told_the_path_takes_websockets(start_hub) -> None:
    hub, _ = await start_hub()
    with pytest.raises(HandshakeRefused) as refused:
        await RawWebSocket.open(hub.rest_port, hub.certificates.ca_cert, upgrade=False)
    assert refused.value.status == 400
    assert b"takes WebSocket upgrades only" in refused.value.body


async def test_the_service_bus_path_serves_the_same_protocols(start_hub) -> None:
    hub, _ = await start_hub()
    ws = await _open(hub, "echo", path="/$servicebus/websocket")
    ws.send(b"eh")
    assert await ws.recv_bytes(2) == b"eh"
    await ws.aclose()


# --- frames ---------------------------------------------------------------------------


async def test_a_fragmented_message_reaches_the_stream_whole_around_a_ping(start_hub) -> None:
    hub, _ = await start_hub()
    ws = await _open(hub)
    ws.send_frame(BINARY, b"abc", fin=False)
    ws.send_frame(PING, b"are you there")  # control frames may come between fragments
    ws.send_frame(CONTINUATION, b"def", fin=False)
    ws.send_frame(CONTINUATION, b"ghi")
    pong = await ws.recv_frame()
    assert pong is not None and (pong.opcode, pong.payload) == (PONG, b"are you there")
    assert await ws.recv_bytes(9) == b"abcdefghi"
    await ws.aclose()


async def test_a_text_message_is_refused_and_ends_the_stream(start_hub) -> None:
    hub, echo = await start_hub()
    ws = await _open(hub)
    ws.send_frame(TEXT, b"text")
    data, close = await ws.recv_until_close()
    assert data == b""
    assert close is not None and close.close_code == 1003
    assert b"binary messages only" in close.payload
    async with asyncio.timeout(5):
        await echo.ended.wait()
    await ws.aclose()


async def test_a_message_over_the_limit_closes_with_1009(start_hub) -> None:
    hub, echo = await start_hub(websocket_limits=WebSocketLimits(max_message_size=1024))
    ws = await _open(hub)
    ws.send(b"a" * 1024)
    assert await ws.recv_bytes(1024) == b"a" * 1024
    ws.send(b"b" * 1025)
    data, close = await ws.recv_until_close()
    assert data == b""
    assert close is not None and close.close_code == 1009
    async with asyncio.timeout(5):
        await echo.ended.wait()
    await ws.aclose()


async def test_a_close_in_the_middle_of_an_mqtt_packet_ends_the_connection(start_hub) -> None:
    hub, _ = await start_hub()
    ensure_identity(hub.core, "half")
    username = "localhost/half/?api-version=2019-10-01"
    connect = encode(Connect("half", False, 60, username, identity_password(hub.core, "half")))
    with watch_log(*SERVER_LOGS) as log:
        ws = await _open(hub, "mqtt")
        ws.send(connect[: len(connect) // 2])
        ws.close()
        data, close = await ws.recv_until_close()
        assert data == b""
        assert close is not None and close.close_code == 1000  # the hub answers the close
        await log.wait_for_async("connection from", "closed")
        assert not log.find("half connected")
    mqtt = next(listener for listener in hub.listeners if listener.name == "MQTT")
    assert mqtt.connection_count == 0  # type: ignore[attr-defined]
    await ws.aclose()


async def test_the_hub_closing_says_going_away_to_websocket_clients(start_hub) -> None:
    hub, echo = await start_hub()
    ws = await _open(hub)
    ws.send(b"hi")
    assert await ws.recv_bytes(2) == b"hi"
    closing = asyncio.ensure_future(hub.close())
    data, close = await ws.recv_until_close()
    assert data == b""
    assert close is not None and close.close_code == 1001
    ws.close(1001)  # the client answers; the hub's close completes
    async with asyncio.timeout(10):
        await closing
    assert echo.ended.is_set()
    await ws.aclose()


# --- timeouts and limits --------------------------------------------------------------


async def test_a_websocket_that_never_starts_its_protocol_is_closed(start_hub) -> None:
    """The gate's header timeout runs until the protocol inside accepts its client."""
    hub, _ = await start_hub(limits=Limits(header_timeout=0.5))
    ws = await _open(hub, "mqtt")
    started = time.monotonic()
    data, _ = await ws.recv_until_close(within=10)
    assert data == b""
    assert 0.4 < time.monotonic() - started < 5
    await ws.aclose()


async def test_websockets_count_in_the_hubs_connection_cap(start_hub) -> None:
    """At the cap, a WebSocket whose protocol has not started yet is evicted for a new
    connection, as any waiting connection is; the new one is served."""
    hub, _ = await start_hub(limits=Limits(max_connections=3))
    waiting = [await _open(hub, "mqtt") for _ in range(3)]
    served = await _open(hub)  # the fourth socket: the oldest waiting one makes room
    served.send(b"ping")
    assert await served.recv_bytes(4) == b"ping"
    data, _ = await waiting[0].recv_until_close()
    assert data == b""
    assert hub.gate.open_count <= 3
    for ws in (*waiting, served):
        await ws.aclose()


async def test_an_accepted_client_silent_past_the_idle_timeout_is_closed(start_hub) -> None:
    """MQTT keep-alive 0 turns MQTT's own timeout off; the WebSocket's idle timeout
    still closes a connection that says nothing at all (1001, going away)."""
    hub, _ = await start_hub(
        limits=Limits(header_timeout=0.5), websocket_limits=WebSocketLimits(idle_timeout=1.5)
    )
    ensure_identity(hub.core, "quiet")
    username = "localhost/quiet/?api-version=2019-10-01"
    connect = encode(Connect("quiet", True, 0, username, identity_password(hub.core, "quiet")))
    with watch_log(*SERVER_LOGS) as log:
        ws = await _open(hub, "mqtt")
        ws.send(connect)
        connack = await ws.recv_bytes(4)
        assert connack == b"\x20\x02\x00\x00"
        started = time.monotonic()
        data, close = await ws.recv_until_close(within=10)
        assert data == b""
        assert close is not None and close.close_code == 1001
        assert time.monotonic() - started > 1.0  # past the header timeout: it had settled
        await log.wait_for_async("quiet disconnected")
    await ws.aclose()


async def test_an_echo_peer_that_does_not_read_holds_back_the_writer(start_hub) -> None:
    """The handler's drain() waits once the unsent data passes the high-water mark, so
    a peer that sends without reading is paused instead of buffered; nothing is lost."""
    hub, echo = await start_hub()
    ws = await _open(hub, rcvbuf=16384)
    # 16 MiB in 64 KiB messages, nothing read meanwhile: more than the kernel buffers.
    sent = bytes(range(256)) * 4096 * 16
    for offset in range(0, len(sent), 65536):
        ws.send(sent[offset : offset + 65536])
    await until(lambda: echo.held_back.is_set() or echo.received == len(sent))
    assert echo.held_back.is_set(), "the handler echoed everything without ever waiting"
    assert await ws.recv_bytes(len(sent), within=60) == sent
    # Our high-water mark and a message in flight, plus what the TLS connection below
    # holds (about 1 MiB measured), far from the 16 MiB a writer that never waits holds.
    assert echo.max_unsent <= 2 * 1024 * 1024
    await ws.aclose()


class Holdup:
    """A stream handler that reads nothing until told to, then counts what it reads."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.received = 0

    async def __call__(self, reader: Any, writer: Any, *, via: str) -> None:
        self.transport = writer.transport
        self.started.set()
        await self.go.wait()
        while data := await reader.read(65536):
            self.received += len(data)


async def test_a_handler_that_reads_nothing_stops_the_websocket_being_read(start_hub) -> None:
    """Unread data stops at the reader's limit: the WebSocket is no longer read (so the
    peer's TCP window closes) until the handler reads again; nothing is lost."""
    hub, _ = await start_hub()
    holdup = Holdup()
    hub.stream_handlers.register("holdup", holdup)
    ws = await _open(hub, "holdup")
    async with asyncio.timeout(5):
        await holdup.started.wait()
    transport = holdup.transport
    assert transport is not None and transport.is_reading()
    total = 4 * 1024 * 1024
    for _ in range(total // 65536):
        ws.send(b"x" * 65536)
    await until(lambda: not transport.is_reading(), what="the reader's buffer to fill")
    holdup.go.set()
    ws.close()
    await ws.recv_until_close()
    assert holdup.received == total
    await ws.aclose()


async def test_a_flooding_websocket_client_does_not_stall_another(start_hub) -> None:
    """One client pours twin requests in and reads nothing back; a Python SDK module over
    WebSockets meanwhile connects and gets its twin quickly, and the flooder is held back,
    not dropped."""
    hub, _ = await start_hub()
    ensure_identity(hub.core, "flood")
    username = "localhost/flood/?api-version=2019-10-01"
    connect = encode(Connect("flood", True, 60, username, identity_password(hub.core, "flood")))
    flooder = await _open(hub, "mqtt")
    flooder.send(connect)
    assert await flooder.recv_bytes(4) == b"\x20\x02\x00\x00"
    # Twin GETs, each answered: what the hub owes the flooder piles up unread, so the hub
    # stops reading it (backpressure) rather than buffer its answers.
    gets = b"".join(encode(Publish(f"$iothub/twin/GET/?$rid={i}")) for i in range(2000))
    flooded = asyncio.Event()

    async def flood() -> None:
        for _ in range(1000):
            flooder.send(gets)
            await flooder.writer.drain()  # waits once the hub stops reading
            flooded.set()

    flooding = asyncio.get_running_loop().create_task(flood())
    try:
        async with asyncio.timeout(10):
            await flooded.wait()
        connection_string = ensure_identity(hub.core, "calm", "mod")
        proxy = ProxyOptions("HTTP", "127.0.0.1", hub.proxy_port)
        ca_pem = hub.certificates.ca_cert.read_text()
        async with sdk_client(connection_string, ca_pem, proxy, websockets=True) as module:
            started = time.monotonic()
            await module.connect()
            for _ in range(5):
                await module.get_twin()
            took = time.monotonic() - started
        assert not flooding.done(), "the flood ended before the other client was done"
        # Unflooded this takes some 30 ms; beside the flood under a second, also on a busy
        # machine. A flooder's whole read per turn made it 10 s (a turn per TLS round trip).
        assert took < 5.0, f"connecting and five twin GETs took {took:.1f}s beside the flood"
    finally:
        flooding.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await flooding
        await flooder.aclose()
