"""An asyncio loop of its own in a daemon thread, for clients whose AMQP work must never
take turns of the window's loop (the event stream's consumer, the C2D sender)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

CLOSE_TIMEOUT = 10.0


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await abort_transports()


async def abort_transports() -> None:
    """A client cancelled mid-connect or cut short while closing can leave its socket
    open on the I/O loop, which holds one client at a time: abort what is left (the
    selector loop's own registry), so nothing leaks past the client or the loop."""
    transports = getattr(asyncio.get_running_loop(), "_transports", {})
    for transport in list(transports.values()):
        if transport is not None and not transport.is_closing():
            transport.abort()
    await asyncio.sleep(0)  # connection_lost runs on the next turn


class IoThread:
    """An asyncio loop in a daemon thread; ``run`` awaits a coroutine on it."""

    def __init__(self, name: str = "events") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return await asyncio.wrap_future(self.submit(coro))

    def close(self) -> None:
        """End what still runs there (cancelled, awaited), then the loop and the thread."""
        with contextlib.suppress(Exception):
            self.submit(_cancel_all()).result(CLOSE_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()
