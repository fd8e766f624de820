"""A TCP relay a test can shut, to decide exactly when a client gets back to a hub.

Open, it pipes each connection to ``target``; shut, it hangs up on new connections at
once (to an SDK behind it that looks like a proxy that went away). It counts what it
piped, so a test can also see how many connections a client opened, and when it let
them go. Either side's end ends both: TLS peers do not half-close.

``drop_sent`` / ``drop_replies`` throw away what the client / the target sends, as a
network that lost it would (``dropped`` is set once something was); a ``cut()`` then
makes the client reconnect and re-send what was never acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Gate:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = True
        self.port = 0
        self.accepted = 0  # connections piped through, over the gate's life
        self.drop_sent = False
        self.drop_replies = False
        self.dropped = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        link = (writer, up_writer)
        self.accepted += 1
        self._links.add(link)
        self._idle.clear()
        await asyncio.gather(
            self._pipe(reader, up_writer, lambda: self.drop_sent),
            self._pipe(up_reader, writer, lambda: self.drop_replies),
            return_exceptions=True,
        )
        self._links.discard(link)
        if not self._links:
            self._idle.set()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dropping: Callable[[], bool],
    ) -> None:
        try:
            while data := await reader.read(65536):
                if dropping():
                    self.dropped.set()
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def wait_idle(self) -> None:
        """Until no connection is piped any more (10 s at most)."""
        async with asyncio.timeout(10.0):
            await self._idle.wait()

    def cut(self) -> None:
        """Drop every connection through the gate now; new ones may follow at once."""
        for link in list(self._links):
            for writer in link:
                writer.transport.abort()

    async def close(self) -> None:
        for link in list(self._links):
            for writer in link:
                writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
