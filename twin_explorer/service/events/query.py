"""Narrow the Events view to the identities a twin query matches (the IoT CLI's ``-q``).

People type a whole query (``SELECT * FROM devices WHERE tags.site = 'lab'``, or
``FROM devices.modules``) or just its condition (``tags.site = 'lab'``). The hub runs it
(the service SDK's query, through the session's service) and the ids it returns are the
filter: a device twin lets through the device's events and its modules', a module twin
its own. The set follows the hub: it is read again a moment after twin-change or
lifecycle events arrive (one read per quiet spell, however many came) and every minute.
A query the hub refuses is said in plain words, and the previous one keeps working."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from twin_explorer.service.errors import InvalidRequest, ServiceError
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.hub import HubService
from twin_explorer.service.observable import Listeners

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
DEBOUNCE_SECONDS = 1.0
PAGE_SIZE = 1000
MAX_IDS = 50_000  # a query matching more is not a filter any more; said, not run on
CHANGES = frozenset({Source.TWIN, Source.LIFECYCLE})
_SELECT = re.compile(r"\s*select\b", re.IGNORECASE)
_WHERE = re.compile(r"\s*where\b", re.IGNORECASE)


class QueryError(ValueError):
    """Why a twin query cannot filter, as a sentence for the place it was typed."""


def query_text(text: str) -> str:
    """The query to run: a whole one as typed, a bare condition on device twins."""
    text = text.strip()
    if not text or _SELECT.match(text):
        return text
    condition = _WHERE.sub("", text, count=1).strip() if _WHERE.match(text) else text
    return f"SELECT * FROM devices WHERE {condition}"


def identities(items: Iterable[dict[str, Any]]) -> set[str]:
    """``device`` for device twins, ``device/module`` for module twins."""
    found: set[str] = set()
    for item in items:
        device = item.get("deviceId") if isinstance(item, dict) else None
        if not isinstance(device, str) or not device:
            continue
        module = item.get("moduleId")
        found.add(f"{device}/{module}" if isinstance(module, str) and module else device)
    return found


class TwinQueryFilter:
    """``ids``: the identities the query in force matches (None: no query);
    ``changed`` tells when they change (the view filters again)."""

    def __init__(
        self,
        batches: Listeners[list[EventRecord]],
        service_for: Callable[[], HubService | None] = lambda: None,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        debounce_seconds: float = DEBOUNCE_SECONDS,
    ) -> None:
        self.service_for = service_for
        self.refresh_seconds = refresh_seconds
        self.debounce_seconds = debounce_seconds
        self.text = ""  # the query in force, as run
        self.ids: frozenset[str] | None = None
        self.reads = 0  # times the hub answered (the first read and every refresh)
        self.changed: Listeners[frozenset[str] | None] = Listeners()
        self._debounce: asyncio.TimerHandle | None = None
        self._periodic: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._unsubscribe = batches.subscribe(self._batch)

    async def apply(self, typed: str) -> None:
        """Filter by this query from now on (empty: no query). QueryError says why it
        cannot, and the query in force stays."""
        text = query_text(typed)
        if not text:
            self._stop()
            self.text = ""
            self._set(None)
            return
        ids = await self._read(text)
        self._stop()
        self.text = text
        self._set(ids)
        self._periodic = asyncio.ensure_future(self._every_minute())

    async def refresh(self) -> None:
        """Read the query in force again; a failure keeps the ids (said in the log)."""
        text = self.text
        if not text:
            return
        try:
            ids = await self._read(text)
        except QueryError as error:
            log.info("twin query refresh failed: %s", error)
            return
        if text == self.text:  # not replaced meanwhile
            self._set(ids)

    async def _read(self, text: str) -> frozenset[str]:
        service = self.service_for()
        if service is None:
            raise QueryError("The twin query runs on the hub: connect to one first.")
        found: set[str] = set()
        seen = 0
        continuation: str | None = None
        try:
            while True:
                page = await service.query(text, page_size=PAGE_SIZE, continuation=continuation)
                seen += len(page.items)
                found |= identities(page.items)
                continuation = page.continuation
                if not continuation:
                    break
                if seen >= MAX_IDS:
                    raise QueryError(
                        f"The query matches more than {MAX_IDS:,} twins: narrow it down."
                    )
        except InvalidRequest as error:
            said = error.detail or error.message
            raise QueryError(f"The hub refused the query: {said}") from None
        except ServiceError as error:
            raise QueryError(f"The query could not run: {error}") from None
        if seen and not found:
            raise QueryError(
                "The query returns no device ids: select whole twins (SELECT * FROM devices "
                "…) or at least deviceId."
            )
        self.reads += 1
        return frozenset(found)

    def _set(self, ids: frozenset[str] | None) -> None:
        if ids != self.ids:
            self.ids = ids
            self.changed.emit(ids)

    def _batch(self, batch: list[EventRecord]) -> None:
        """A twin changed or an identity came or went: read again once things settle."""
        if not self.text or not any(record.source in CHANGES for record in batch):
            return
        if self._debounce is not None:
            self._debounce.cancel()
        loop = asyncio.get_running_loop()
        self._debounce = loop.call_later(self.debounce_seconds, self._settled)

    def _settled(self) -> None:
        self._debounce = None
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh())
        else:  # one read at a time; the news came during it, so read once more after
            self._debounce = asyncio.get_running_loop().call_later(
                self.debounce_seconds, self._settled
            )

    async def _every_minute(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    def _stop(self) -> None:
        if self._debounce is not None:
            self._debounce.cancel()
            self._debounce = None
        if self._periodic is not None:
            self._periodic.cancel()
            self._periodic = None

    async def aclose(self) -> None:
        self._unsubscribe()
        tasks = [t for t in (self._periodic, self._refreshing) if t is not None]
        self._stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
