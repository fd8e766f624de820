"""The hub's TLS transport (pyOpenSSL through memory BIOs) under its listeners."""

from __future__ import annotations

import asyncio
from pathlib import Path

from twin_explorer.localhub.runtime.tls import client_context, ensure_certificates, hub_tls_context
from twin_explorer.localhub.transports.listeners import ConnectionGate


def test_close_called_outside_the_running_loop_still_closes(tmp_path: Path) -> None:
    """The app runs the hub on a Qt-driven loop: a transport can be closed from a callback
    while asyncio has no running loop (aiohttp's connection_lost does so)."""
    certs = ensure_certificates(tmp_path)
    loop = asyncio.new_event_loop()
    gate = ConnectionGate()
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer)

    async def connect():
        factory = gate.stream_factory(handler)
        server = await gate.serve(factory, "127.0.0.1", 0, tls=hub_tls_context(certs))
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(certs), server_hostname="localhost"
        )
        async with asyncio.timeout(10):
            return server, reader, writer, await accepted.get()

    try:
        server, reader, writer, served = loop.run_until_complete(connect())
        served.transport.close()  # no loop is running here

        async def the_client_sees_the_end() -> None:
            async with asyncio.timeout(10):
                assert await reader.read() == b""
            writer.close()
            await ConnectionGate.stop_serving(server)

        loop.run_until_complete(the_client_sees_the_end())
    finally:
        gate.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
