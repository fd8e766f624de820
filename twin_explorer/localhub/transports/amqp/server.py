"""The local hub's AMQP endpoint: AMQP 1.0 over TLS on 5671, as the IoT Hub SDKs speak it.

:class:`AmqpServer` owns the listener (through the hub's :class:`ConnectionGate`: TLS
with the hub's certificate, handshake and header timeouts, the connection cap) and one
:class:`AmqpConnection` task per connection. :meth:`AmqpServer.serve_stream` runs the
same connection over any reader/writer pair already past TLS, which is how the WebSocket
endpoint carries ``AMQPWSB10``. Everything IoT Hub decides is the core's; connections only
translate (reference ``iothub-amqp.md``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

from twin_explorer.localhub.transports.amqp.connection import MAX_OUTBOUND, AmqpConnection
from twin_explorer.localhub.transports.listeners import (
    ConnectionGate,
    GatedServer,
    abort_when_done,
)

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

logger = logging.getLogger(__name__)

IOTHUB_PORT = 5671  # the port AMQP clients dial (A.1)


class AmqpServer(GatedServer):
    """Device- and service-side AMQP server over ``core``: ``start(host, port)`` listens;
    ``close()`` (or leaving ``async with``) ends everything."""

    name = "AMQP"
    scheme = "amqps"
    iothub_port = IOTHUB_PORT

    def __init__(
        self,
        core: HubCore,
        ssl_context: ssl.SSLContext | None,
        *,
        gate: ConnectionGate | None = None,
        max_outbound: int = MAX_OUTBOUND,
    ) -> None:
        super().__init__(gate, ssl_context)
        self.core = core
        self._max_outbound = max_outbound
        self._connections: dict[AmqpConnection, asyncio.Task[None]] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: the OS chooses) and return the bound port."""
        return await self._listen(host, port)

    async def close(self) -> None:
        """Stop listening, close every connection and wait for their tasks. Repeatable."""
        server = await self._stop_listening()
        tasks = list(self._connections.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def _start(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, via: str
    ) -> asyncio.Task[None] | None:
        if self._closed:
            writer.transport.abort()
            return None
        transport = writer.transport
        connection = AmqpConnection(
            self.core,
            reader,
            writer,
            via=via,
            # The gate's header timeout runs until the client authenticates; then AMQP's
            # idle timeout rules.
            settled=lambda: self._gate.settled(transport),
            max_outbound=self._max_outbound,
        )
        logger.debug("%s connection from %s", via, connection.peer)
        task = asyncio.get_running_loop().create_task(connection.run())
        self._connections[connection] = task
        task.add_done_callback(lambda _: self._connections.pop(connection, None))
        abort_when_done(task, writer)
        return task

    # -- inspection ----------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Open connections, authenticated or not."""
        return len(self._connections)

    def connected_clients(self) -> list[str]:
        """Client ids (``d`` or ``d/m``) connected over AMQP now."""
        return sorted(cid for conn in self._connections for cid in conn.endpoints)
