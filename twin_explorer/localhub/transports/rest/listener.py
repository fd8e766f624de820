"""The REST transport as a hub listener: the aiohttp application behind the hub's gate.

The gate runs TLS with its handshake timeout and counts the connection; the middlewares
tell it when a request is busy (so idle keep-alive connections can be closed) and answer
a full disk without a log line per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from OpenSSL import SSL

from twin_explorer.localhub.errors import DiskFull, HubError
from twin_explorer.localhub.transports.listeners import ConnectionGate, busy_while
from twin_explorer.localhub.transports.rest import create_app
from twin_explorer.localhub.transports.rest.wire import error_response

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

logger = logging.getLogger(__name__)

# How long close() lets in-flight REST requests finish before cancelling them; a direct
# method call can wait minutes for a device, and shutdown must not.
REST_SHUTDOWN_SECONDS = 2.0
IOTHUB_PORT = 443  # the port the service SDK dials (B.1)


class RestListener:
    """The service REST API over HTTPS on one port."""

    name = "REST"
    iothub_port = IOTHUB_PORT

    def __init__(
        self,
        core: HubCore,
        tls: SSL.Context | None,
        gate: ConnectionGate,
        info: Callable[[], dict[str, Any]],
        *,
        extend: Callable[[web.Application], None] | None = None,
    ) -> None:
        app = create_app(core, invoker=core.methods, info=info)
        if extend is not None:  # routes of other transports on this port (WebSockets)
            extend(app)
        app.middlewares.append(_gated_requests(gate))
        app.middlewares.append(_answer_disk_full)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=REST_SHUTDOWN_SECONDS,
            handler_cancellation=True,  # a client that gives up ends its method wait
        )
        self._tls = tls
        self._gate = gate
        self._set_up = False
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("REST listener not started")
        return self._port

    async def start(self, host: str, port: int) -> int:
        if not self._set_up:
            await self._runner.setup()
            self._set_up = True
        site = _GatedSite(self._runner, host, port, self._gate, self._tls)
        try:
            await site.start()
        except BaseException:
            await site.stop()  # unregister the failed site before a retry
            raise
        self._port = site.bound_port
        return self._port

    async def close(self) -> None:
        if self._set_up:
            await self._runner.cleanup()


class _GatedSite(web.BaseSite):
    """aiohttp's TCPSite, but accepting through the hub's gate (which also runs TLS)."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        gate: ConnectionGate,
        tls: SSL.Context | None,
    ) -> None:
        super().__init__(runner)
        self._host, self._port, self._gate, self._tls = host, port, gate, tls
        self.bound_port = port

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        assert self._runner.server is not None
        self._server = await self._gate.serve(
            self._runner.server, self._host, self._port, tls=self._tls
        )
        self.bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            await self._gate.stop_serving(self._server)
        await super().stop()


def _gated_requests(gate: ConnectionGate) -> Any:
    """Tell the gate when a REST connection is busy; the body must arrive in time."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        with busy_while(gate, request.transport):
            if request.can_read_body:
                try:
                    async with asyncio.timeout(gate.limits.header_timeout):
                        await request.read()  # cached: the handler reads it again
                except TimeoutError:
                    response = error_response(
                        HubError(408, "RequestTimeout", 408000, "The request body came too slowly.")
                    )
                    response.force_close()
                    return response
            return await handler(request)

    return middleware


@web.middleware
async def _answer_disk_full(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer a full disk without a log line per request: the store logged it once."""
    try:
        return await handler(request)
    except DiskFull as error:
        return error_response(error)
