"""SQL reads off the event loop: one worker thread at a time with its own read-only
connection to the hub's file (WAL lets it read the last committed state while the loop's
connection writes). For scans whose cost grows with the registry."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any


class BackgroundReader:
    """``await rows(sql, params)`` on a worker thread; ``close()`` when done."""

    def __init__(self, open_reader: Callable[[], sqlite3.Connection]) -> None:
        self._open = open_reader
        self._conn: sqlite3.Connection | None = None
        self._lock: asyncio.Lock | None = None

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one statement at a time on the one connection
            if self._conn is None:
                self._conn = self._open()
            conn = self._conn
            work = asyncio.ensure_future(
                asyncio.to_thread(lambda: conn.execute(sql, params).fetchall())
            )
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                # The thread still holds the connection: keep the lock (and the
                # connection open) until it lets go, then give up as asked.
                await asyncio.wait({work})
                raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
