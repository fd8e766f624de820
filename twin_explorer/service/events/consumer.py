"""Read the hub's built-in Event Hub-compatible endpoint with ``azure.eventhub.aio``, and
say what went wrong in plain words (never the connection string).

The client runs on an asyncio loop of its own, in one background thread: its pure-Python
AMQP work (frames, credit, keep-alive timers) never takes turns of the window's loop, and
the window gets whole batches of decoded records (``call_soon_threadsafe``).

The local hub serves the endpoint on its AMQP port: the client reaches it through
``custom_endpoint_address`` with plain AMQP over TLS, trusting the hub's CA."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from azure.eventhub import TransportType
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.exceptions import AuthenticationError, EventHubError

from twin_explorer.connection.redact import redact
from twin_explorer.service.events.record import EventRecord, from_event_data
from twin_explorer.service.io_thread import IoThread, abort_transports
from twin_explorer.service.observable import Value

log = logging.getLogger(__name__)

DEFAULT_GROUP = "$Default"
CONNECT_TIMEOUT = 20.0
CLOSE_TIMEOUT = 10.0
MAX_BATCH = 300
PREFETCH = 600
# Few retries: a refused link (no such consumer group) reaches on_error in seconds; the
# client reconnects lost partitions by itself anyway.
RETRIES = 1


class StartAt(Enum):
    NOW = "now"
    BEGINNING = "the beginning"
    TIME = "a time"


@dataclass(frozen=True)
class Endpoint:
    """Where the stream is read: a connection string (``Endpoint=sb://…;EntityPath=…``)
    and, for the local hub, the address to dial and the CA to trust."""

    connection_string: str
    address: str | None = None  # custom_endpoint_address
    ca_cert: str | None = None

    def __repr__(self) -> str:  # the connection string carries a key
        return f"Endpoint(address={self.address!r})"


class State(Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    RECEIVING = "receiving"
    FAILED = "failed"


@dataclass(frozen=True)
class Status:
    state: State
    text: str


STOPPED = Status(State.STOPPED, "Not receiving")


class StreamError(Exception):
    """What went wrong, as a sentence for the pane."""


def starting_position(start: StartAt, at: datetime | None) -> str | datetime:
    """Where each partition's reader starts. "Now" is the moment Start was asked for, not
    ``@latest``: the client claims its partitions a moment later, and an event sent in
    between must not be lost (``at``, when given, is that moment)."""
    if start is StartAt.BEGINNING:
        return "-1"
    return at if at is not None else datetime.now(UTC)


def explain(error: BaseException, group: str) -> str:
    """An SDK error in plain words, with what to do about it."""
    said = redact(str(error))
    lowered = said.casefold()
    if isinstance(error, ValueError):
        return (
            "The Event Hub-compatible connection string is not valid: it should look like "
            "Endpoint=sb://…/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=… "
            "(Azure portal → your IoT hub → Built-in endpoints)."
        )
    if "consumer group" in lowered or ("not-found" in lowered or "not found" in lowered):
        if "consumer" in lowered or "group" in lowered or group != DEFAULT_GROUP:
            return (
                f"The hub has no consumer group {group!r}: create it (Azure portal → your "
                "IoT hub → Built-in endpoints → Consumer groups; local hub: twin-explorer hub "
                f"consumer-groups add {group}) or choose $Default."
            )
        return f"The event stream was not found: check the Event Hub name (EntityPath). ({said})"
    if isinstance(error, AuthenticationError) or "unauthorized" in lowered:
        return (
            "The hub refused the Event Hub-compatible connection string (wrong key or policy "
            "without the Service connect permission): copy it again from Built-in endpoints."
        )
    if isinstance(error, TimeoutError):
        return "The event stream did not answer in time: check the address and the network."
    if isinstance(error, EventHubError):
        return f"The event stream failed: {said}"
    return f"The event stream failed unexpectedly: {said}"


class Consumer:
    """One receiving client at a time; ``on_batch`` gets records as they arrive."""

    def __init__(self, on_batch: Callable[[list[EventRecord]], None]) -> None:
        self.on_batch = on_batch
        self.status: Value[Status] = Value(STOPPED)
        self._client: EventHubConsumerClient | None = None
        self._task: Any = None  # concurrent.futures.Future of the receive, on the I/O loop
        self._io: IoThread | None = None
        self._window_loop: asyncio.AbstractEventLoop | None = None
        self._group = DEFAULT_GROUP
        self._closing: asyncio.Future[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(
        self,
        endpoint: Endpoint,
        *,
        group: str = DEFAULT_GROUP,
        start: StartAt = StartAt.NOW,
        at: datetime | None = None,
    ) -> None:
        """Connect (checked with one read of the hub's partitions), then receive in the
        background. Raises ``StreamError`` with the reason when it cannot."""
        await self.stop()
        self._group = group = group.strip() or DEFAULT_GROUP
        self.status.set(Status(State.CONNECTING, f"Connecting to the event stream ({group})…"))
        options: dict[str, Any] = {}
        if endpoint.address:
            options = {
                "custom_endpoint_address": endpoint.address,
                "transport_type": TransportType.Amqp,
                "connection_verify": endpoint.ca_cert,
            }
        self._window_loop = asyncio.get_running_loop()
        if self._io is None:
            self._io = IoThread()

        async def make() -> EventHubConsumerClient:
            return EventHubConsumerClient.from_connection_string(
                endpoint.connection_string, consumer_group=group, retry_total=RETRIES, **options
            )

        try:
            client = await self._io.run(make())
        except (ValueError, KeyError, TypeError) as exc:
            raise self._failed(ValueError(str(exc))) from None
        self._client = client

        async def partition_ids() -> list[str]:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await client.get_partition_ids()

        try:
            partitions = await self._io.run(partition_ids())
        except (Exception, TimeoutError) as exc:
            await self._close_client()
            raise self._failed(exc) from None
        self._task = self._io.submit(self._receive(client, starting_position(start, at)))
        where = {StartAt.NOW: "new events", StartAt.BEGINNING: "from the beginning"}.get(
            start, f"from {at:%Y-%m-%d %H:%M:%S}" if at else "new events"
        )
        self.status.set(
            Status(State.RECEIVING, f"Receiving {where} · {len(partitions)} partitions · {group}")
        )

    def _failed(self, error: BaseException) -> StreamError:
        text = explain(error, self._group)
        self.status.set(Status(State.FAILED, text))
        return StreamError(text)

    def _to_window(self, callback: Callable[..., None], *args: Any) -> None:
        window = self._window_loop
        if window is not None and not window.is_closed():
            window.call_soon_threadsafe(callback, *args)

    def _refused(self, error: BaseException) -> None:
        """On the window's loop: the client's error, said; the client stopped."""
        if self.status.value.state is State.RECEIVING:
            self._failed(error)
            self._closing = asyncio.ensure_future(self._close_client())

    async def _receive(self, client: EventHubConsumerClient, position: str | datetime) -> None:
        """On the I/O loop: decode each batch there and hand it to the window's loop."""

        async def on_batch(context: Any, events: list[Any]) -> None:
            if events:
                now = time.monotonic()
                partition = context.partition_id
                records = [from_event_data(e, partition, now) for e in events]
                self._to_window(self.on_batch, records)

        async def on_error(_context: Any, error: Exception) -> None:
            # The client retries lost links itself; a refusal (no such consumer group,
            # no permission) it would retry for ever, so stop and say why.
            log.info("event stream error: %r %s", type(error), redact(str(error)))
            self._to_window(self._refused, error)

        try:
            await client.receive_batch(
                on_batch,
                max_batch_size=MAX_BATCH,
                max_wait_time=None,
                starting_position=position,
                prefetch=PREFETCH,
                on_error=on_error,
            )
        except Exception as exc:
            self._to_window(self._failed, exc)

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is None or self._io is None:
            return

        async def close() -> None:
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await client.close()
            await abort_transports()

        with contextlib.suppress(Exception):
            await self._io.run(close())

    async def stop(self) -> None:
        # The reader first: cancelled mid-connect after its client closed, it could open
        # a partition's connection that nothing closes any more.
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: a receive that does not end when cancelled must not hold the
            # window's close (its loop is closed with the thread below).
            with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await asyncio.wrap_future(task)
        await self._close_client()
        if self.status.value.state is not State.FAILED:
            self.status.set(STOPPED)

    async def aclose(self) -> None:
        """Stop, and end the I/O thread."""
        await self.stop()
        io, self._io = self._io, None
        if io is not None:
            await asyncio.get_running_loop().run_in_executor(None, io.close)
