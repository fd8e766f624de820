"""The app's live event stream: the consumer for the hub the window is on, the arrivals
batched (one update of the views per ``BATCH_SECONDS``, however many events came), the
bounded log the Events view shows, and recording.

On the local hub it connects by itself from its ready line; for a saved connection it
uses the Event Hub-compatible connection string kept with the profile, if any."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from twin_explorer.service.events.collector import PacedCollector
from twin_explorer.service.events.consumer import (
    DEFAULT_GROUP,
    STOPPED,
    Consumer,
    Endpoint,
    StartAt,
    State,
    Status,
    StreamError,
)
from twin_explorer.service.events.log import EventLog
from twin_explorer.service.events.query import TwinQueryFilter
from twin_explorer.service.events.record import EventRecord
from twin_explorer.service.events.recorder import Recorder
from twin_explorer.service.events.routes import SourcesSeen
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubInfo
from twin_explorer.service.observable import Listeners, Value

BATCH_SECONDS = 0.05
CONNECTING = Status(State.CONNECTING, "Connecting to the event stream…")

NO_ENDPOINT = (
    "This connection has no Event Hub-compatible connection string: add it in Hub → "
    "Connections… (Azure portal → your IoT hub → Built-in endpoints)."
)


def local_endpoint(info: LocalHubInfo | None) -> Endpoint | None:
    if info is None or not info.eventhub_connection_string or info.eventhub_endpoint is None:
        return None
    return Endpoint(info.eventhub_connection_string, info.eventhub_endpoint, info.ca_cert)


class EventStream:
    """``log``: what the Events view shows; ``batches``: every batch as it is shown (for
    charts and the patch log); ``status``: receiving, or why not; ``query``: the twin
    query filter, run on the hub of ``service_for``."""

    def __init__(
        self,
        endpoint_for: Callable[[], Endpoint | None] = lambda: None,
        *,
        service_for: Callable[[], HubService | None] = lambda: None,
        log: EventLog | None = None,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.endpoint_for = endpoint_for  # the endpoint of the hub the window is on
        self.log = log or EventLog()
        self.batches: Listeners[list[EventRecord]] = Listeners()
        self.query = TwinQueryFilter(self.batches, service_for)
        self.query.changed.subscribe(self._query_changed)
        self.collector = PacedCollector()
        self.sources_seen = SourcesSeen()  # for the hint about routes
        self.consumer = Consumer(self._arrived)
        self.status: Value[Status] = self.consumer.status
        self.group = DEFAULT_GROUP
        self.start_at = StartAt.NOW
        self.start_time: datetime | None = None
        self.batch_seconds = batch_seconds
        self.recorder: Recorder | None = None
        self.queue_dropped = 0
        self._pending: deque[EventRecord] = deque(maxlen=self.log.capacity)
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_flush = float("-inf")
        # One start or stop at a time: two starts overlapping (Restart pressed while the
        # window's own start still connects) would each leave a reader running.
        self._switching = asyncio.Lock()

    # -- receiving ----------------------------------------------------------------------

    async def start(self) -> None:
        """(Re)start reading with the current group and start choice; a failure is in
        ``status`` (and raised as ``StreamError``)."""
        # Said at once, also while an earlier switch finishes: what shows is not yet read.
        self.status.set(CONNECTING)
        # "Now" is when Start was asked for, even when an earlier switch still runs.
        asked = datetime.now(UTC) if self.start_at is StartAt.NOW else self.start_time
        async with self._switching:
            self.collector.hold()
            endpoint = self.endpoint_for()
            if endpoint is None:
                await self.consumer.stop()
                self.status.set(Status(State.FAILED, NO_ENDPOINT))
                raise StreamError(NO_ENDPOINT)
            await self.consumer.start(endpoint, group=self.group, start=self.start_at, at=asked)
            self.sources_seen.restart(time.monotonic())

    async def stop(self) -> None:
        async with self._switching:
            await self.consumer.stop()
            self.status.set(STOPPED)

    @property
    def receiving(self) -> bool:
        return self.consumer.running

    def _arrived(self, records: list[EventRecord]) -> None:
        pending = self._pending
        overflow = len(pending) + len(records) - (pending.maxlen or 0)
        if overflow > 0:
            self.queue_dropped += overflow
        pending.extend(records)
        if self._flush_handle is None:
            # The first event after a quiet spell shows at once; a burst waits for the
            # rest of its batch window: at most one view update per ``batch_seconds``.
            loop = asyncio.get_running_loop()
            wait = self._last_flush + self.batch_seconds - loop.time()
            self._flush_handle = loop.call_later(max(0.0, wait), self.flush)

    def flush(self) -> None:
        """Show everything that arrived since the last batch, at once."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending:
            return
        with contextlib.suppress(RuntimeError):  # flushed by hand outside a loop
            self._last_flush = asyncio.get_running_loop().time()
        batch = list(self._pending)
        self._pending.clear()
        if self.recorder is not None:
            self.recorder.write(batch)
        self.log.extend(batch)
        self.sources_seen.add(batch)
        self.batches.emit(batch)

    def _query_changed(self, ids: frozenset[str] | None) -> None:
        self.flush()
        self.log.set_filter(replace(self.log.filter, ids=ids))

    @property
    def dropped(self) -> int:
        return self.log.dropped + self.queue_dropped

    # -- recording ----------------------------------------------------------------------

    def record_to(self, path: str | Path | None) -> None:
        """Start recording what arrives from now on to ``path`` (JSON Lines); None stops."""
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if path is not None:
            self.recorder = Recorder(path)

    async def aclose(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        await self.query.aclose()
        await self.consumer.aclose()
        await self.collector.release()
        self.record_to(None)


class FollowHub:
    """Restart the stream whenever the window's hub changes (stop it when none)."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self._task: asyncio.Task[None] | None = None

    def __call__(self, service: object | None) -> None:
        previous = self._task
        self._task = asyncio.ensure_future(self._switch(previous, service is not None))

    async def _switch(self, previous: asyncio.Task[None] | None, start: bool) -> None:
        # One switch after the other: a start cancelled half-way could leave the client's
        # sockets open, so the previous switch finishes first.
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        await self.stream.stop()
        if start:
            with contextlib.suppress(StreamError):  # the status says why, in the pane
                await self.stream.start()
            await self.stream.query.refresh()  # a twin query in force, on the new hub

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self.stream.aclose()
