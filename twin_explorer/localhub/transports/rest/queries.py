"""Query pages off the event loop.

Everything else the core does takes well under a millisecond, but a query that filters
on twin contents scans every twin: with 10,000 devices and 20,000 modules one page costs
~80-120 ms of SQLite and JSON work, and on the loop that stalls every other connection
(measured: a twin GET went from 1.4 ms to 74 ms median while big queries ran).

So pages run on one worker thread with its own read-only connection to the hub's SQLite
file. WAL mode lets it read the last committed state while the loop thread keeps
writing, and the core's single connection stays on the loop thread, as the core requires.
The page is also serialized there, since a 1000-twin page is ~0.7 MB of JSON.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from twin_explorer.localhub.core.querying import QueryPage
from twin_explorer.localhub.transports.rest.wire import dumps

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore


class QueryRunner:
    """Runs ``POST /devices/query`` pages the way ``HubCore.query`` does, on a thread."""

    def __init__(self, core: HubCore) -> None:
        self._core = core
        # Pages run here must issue and accept HubCore.query's continuation tokens (a
        # test pins that the two stay interchangeable): the core's reader does both.
        self._reader = core.query_reader()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hub-query")
        self._closed = False

    async def page(
        self, text: object, max_item_count: int | None, continuation: str | None
    ) -> tuple[QueryPage, bytes]:
        """One page and its JSON body; 400 HubErrors as ``HubCore.query`` raises them."""
        if self._closed:
            raise RuntimeError("the query runner is closed")
        # Pending lastActivityTime writes first, so queries see them (as HubCore.query).
        self._core.flush()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._run, text, max_item_count, continuation
        )

    def _run(
        self, text: object, max_item_count: int | None, continuation: str | None
    ) -> tuple[QueryPage, bytes]:
        page = self._reader.run(text, max_item_count, continuation)
        return page, dumps(page.items)

    async def close(self) -> None:
        """Let a running page finish, then close the thread and the connection."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        self._reader.close()
