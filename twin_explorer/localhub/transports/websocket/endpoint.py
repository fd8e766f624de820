"""IoT Hub's WebSocket endpoint on the REST port: ``GET /$iothub/websocket``.

Devices behind firewalls that pass only 443 use MQTT or AMQP over secure WebSockets
(Python ``websockets=True``, Node ``MqttWs`` and ``AmqpWs``); Event Hubs clients dial
``/$servicebus/websocket``. The client names the protocol as the WebSocket subprotocol
(``mqtt``, ``AMQPWSB10``); :class:`StreamHandlers` maps each name to a protocol server's
``serve_stream(reader, writer, *, via)``, which gets the same byte stream a TLS
connection gives it (:mod:`.stream`). This module knows no protocol: the runtime fills
the handlers.

Limits: a handshake offering no protocol we serve is refused (400, saying which we do);
messages over ``max_message_size`` close the WebSocket (1009); the connection counts in
the hub's gate like any other and, until the protocol inside has accepted its client,
stays evictable with the gate's header timeout (so idle upgrades neither linger nor
crowd out real clients); after that the protocol's keep-alive rules, with the stream's
idle timeout as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.transports.listeners import ConnectionGate
from twin_explorer.localhub.transports.websocket.stream import IDLE_TIMEOUT, open_stream

logger = logging.getLogger(__name__)

IOTHUB_PATH = "/$iothub/websocket"
SERVICEBUS_PATH = "/$servicebus/websocket"  # Event Hubs over WebSockets (AMQP)
VIA = "wss"
# The largest packet the MQTT engine takes is about 320 KiB (a 256 KB message, its topic
# and header); AMQP frames are at most the 64 KiB frame size we advertise.
MAX_MESSAGE_SIZE = 512 * 1024

StreamHandler = Callable[..., Awaitable[None]]  # serve_stream(reader, writer, *, via)


class StreamHandlers:
    """Subprotocol name → the protocol server that serves a stream of it."""

    def __init__(self) -> None:
        self._handlers: dict[str, StreamHandler] = {}

    def register(self, subprotocol: str, handler: StreamHandler) -> None:
        self._handlers[subprotocol] = handler

    def unregister(self, subprotocol: str) -> None:
        self._handlers.pop(subprotocol, None)

    def get(self, subprotocol: str) -> StreamHandler | None:
        return self._handlers.get(subprotocol)

    @property
    def names(self) -> list[str]:
        return list(self._handlers)


@dataclass(frozen=True)
class WebSocketLimits:
    max_message_size: int = MAX_MESSAGE_SIZE
    idle_timeout: float = IDLE_TIMEOUT


class WebSocketEndpoint:
    """The route handler; ``routes()`` goes into the REST application."""

    def __init__(
        self,
        handlers: StreamHandlers,
        gate: ConnectionGate | None = None,
        limits: WebSocketLimits | None = None,
    ) -> None:
        self.handlers = handlers
        self._gate = gate
        self.limits = limits or WebSocketLimits()
        self._open: set[web.WebSocketResponse] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(IOTHUB_PATH, self.handle), web.get(SERVICEBUS_PATH, self.handle)]

    def install(self, app: web.Application) -> None:
        """Add the routes to ``app`` and close our WebSockets when it shuts down."""
        app.add_routes(self.routes())
        app.on_shutdown.append(self._shutdown)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            protocols=self.handlers.names,
            max_msg_size=self.limits.max_message_size + 1,  # aiohttp refuses at the size
            compress=False,  # binary protocols: deflate would cost CPU and buy nothing
            autoping=True,
        )
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise HubError(
                400, "ArgumentInvalid", 400004, f"{request.path} takes WebSocket upgrades only."
            )
        # aiohttp picks the first subprotocol the client offers that we serve (RFC 6455
        # 4.2.2) but would upgrade without one; a client must name its protocol.
        subprotocol = ready.protocol
        handler = self.handlers.get(subprotocol) if subprotocol else None
        if handler is None:
            raise _refusal(_offered(request), self.handlers.names)
        await ws.prepare(request)
        base = request.transport
        on_gate_state = None
        if self._gate is not None and base is not None:
            gate = self._gate
            # Evictable, on the header timeout, until the protocol accepts its client.
            gate.waiting(base)
            on_gate_state = functools.partial(_forward_state, gate, base)
        reader, writer, transport = open_stream(
            ws, base, idle_timeout=self.limits.idle_timeout, on_gate_state=on_gate_state
        )
        logger.debug("WebSocket (%s) from %s", subprotocol, writer.get_extra_info("peername"))
        self._open.add(ws)
        pumping = asyncio.get_running_loop().create_task(transport.run())
        try:
            await handler(reader, writer, via=VIA)
        except Exception:
            logger.exception("the %s handler failed on a WebSocket", subprotocol)
        finally:
            self._open.discard(ws)
            if not transport.is_closing():
                transport.close()
            try:
                await pumping  # sends what is left, then the close frame
            except asyncio.CancelledError:
                pumping.cancel()
                transport.abort()
                raise
        return ws

    async def _shutdown(self, _: web.Application) -> None:
        """The hub is closing: tell every WebSocket client (1001 going away)."""
        for ws in list(self._open):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close(code=1001, message=b"hub closing")


def _forward_state(gate: ConnectionGate, base: asyncio.BaseTransport, state: str) -> None:
    """A gate state (its public method of that name) for the WebSocket's connection."""
    if state in ("busy", "idle", "settled", "waiting"):
        getattr(gate, state)(base)


def _offered(request: web.Request) -> list[str]:
    header = request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, [])
    return [name.strip() for value in header for name in value.split(",") if name.strip()]


def _refusal(offered: list[str], served: list[str]) -> HubError:
    wanted = " or ".join(served) or "none (no protocol is enabled)"
    said = ", ".join(clip(name, 40) for name in offered[:5]) if offered else "none"
    return HubError(
        400,
        "ArgumentInvalid",
        400004,
        f"The WebSocket subprotocol must be {wanted}; the request offered {said}.",
    )
