"""The off-loop reader: a cancelled read keeps the connection to itself until its
thread is done with it, so the next read or a close never shares it with that thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from twin_explorer.localhub.store.reader import BackgroundReader

SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " SELECT COUNT(*) FROM n"
)


async def test_a_cancelled_read_holds_the_connection_until_its_thread_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.db"
    sqlite3.connect(path).close()
    reader = BackgroundReader(lambda: sqlite3.connect(path, check_same_thread=False))
    # How long the slow statement takes here, uncancelled.
    began = time.monotonic()
    assert (await reader.rows(SLOW, (500_000,)))[0][0] == 500_000
    alone = time.monotonic() - began

    read = asyncio.ensure_future(reader.rows(SLOW, (500_000,)))
    await asyncio.sleep(alone / 10)  # the thread is inside the statement now
    began = time.monotonic()
    read.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await read
    # The cancelled read returned only once its thread was done with the connection.
    assert time.monotonic() - began > alone / 3
    assert await reader.rows("SELECT 1") == [(1,)]
    reader.close()
