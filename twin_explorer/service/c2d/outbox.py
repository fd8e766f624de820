"""The messages sent from the app, each with what became of it: sending, sent, waiting for
feedback, then the feedback in words (or why it did not go). Lives on the window's loop;
the AMQP client runs on an I/O thread of its own. Bounded: the last ``MAX_ENTRIES``
messages are kept, and feedback is awaited for at most ``MAX_WAITING`` of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum

from twin_explorer.service.c2d.client import (
    CLOSE_TIMEOUT,
    SEND_TIMEOUT,
    C2DClient,
    C2DError,
    explain,
)
from twin_explorer.service.c2d.endpoint import C2DEndpoint, EndpointError
from twin_explorer.service.c2d.feedback import FeedbackRecord, outcome_text
from twin_explorer.service.c2d.message import Ack, OutgoingMessage, problems
from twin_explorer.service.io_thread import IoThread
from twin_explorer.service.observable import Listeners, Value

MAX_ENTRIES = 200
MAX_WAITING = 1000


class State(Enum):
    SENDING = "sending"
    SENT = "sent"  # no feedback asked for
    WAITING = "waiting"  # sent; feedback asked for, not come yet
    DELIVERED = "delivered"  # feedback Success
    UNDELIVERED = "undelivered"  # feedback Rejected, Expired, DeliveryCountExceeded, Purged
    FAILED = "failed"  # the hub did not take it


@dataclass(frozen=True)
class Sent:
    message_id: str
    device_id: str
    at: datetime
    ack: Ack
    state: State
    text: str  # what happened, in words
    feedback: str = ""  # the feedback's status code, once it came

    @property
    def finished(self) -> bool:
        return self.state not in (State.SENDING, State.WAITING)


def waiting_for(ack: Ack) -> bool:
    return ack is not Ack.NONE


class Outbox:
    """``changed`` tells of each entry as it changes (the newest first in ``entries``);
    ``feedback_problem`` says why feedback cannot come for now (None when it can)."""

    def __init__(self, endpoint_for: Callable[[], C2DEndpoint | None]) -> None:
        self.endpoint_for = endpoint_for  # raises EndpointError with the reason
        self.entries: deque[Sent] = deque(maxlen=MAX_ENTRIES)
        self.changed: Listeners[Sent] = Listeners()
        self.feedback_problem: Value[str | None] = Value(None)
        self._waiting: OrderedDict[str, Sent] = OrderedDict()
        self._io: IoThread | None = None
        self._client: C2DClient | None = None
        self._window_loop: asyncio.AbstractEventLoop | None = None
        self._resetting: asyncio.Task[None] | None = None

    def _put(self, entry: Sent) -> None:
        for index, old in enumerate(self.entries):
            if old.message_id == entry.message_id and old.at == entry.at:
                self.entries[index] = entry
                break
        else:
            self.entries.appendleft(entry)
        self.changed.emit(entry)

    async def send(self, message: OutgoingMessage) -> Sent:
        """Send one message; the entry says how it went (its text is the error, if any)."""
        entry = Sent(
            message.message_id.strip(),
            message.device_id,
            datetime.now(UTC),
            message.ack,
            State.SENDING,
            "Sending…",
        )
        self._put(entry)
        wrong = problems(message)
        if wrong:
            entry = replace(entry, state=State.FAILED, text=" ".join(wrong))
            self._put(entry)
            return entry
        try:
            client = await self._ensure_client()
            if waiting_for(message.ack):
                self._waiting[entry.message_id] = entry
                while len(self._waiting) > MAX_WAITING:
                    _, oldest = self._waiting.popitem(last=False)
                    self._put(
                        replace(
                            oldest, state=State.SENT, text=f"{oldest.text} (no longer waited for)"
                        )
                    )
                assert self._io is not None
                self._io.loop.call_soon_threadsafe(client.want_feedback)
            assert self._io is not None
            # The client bounds its own wait; this one holds should its loop be stuck.
            async with asyncio.timeout(SEND_TIMEOUT + 5):
                await self._io.run(client.send(message))
        except (C2DError, EndpointError, TimeoutError) as exc:
            self._waiting.pop(entry.message_id, None)
            text = str(exc) if not isinstance(exc, TimeoutError) else explain(exc, message)
            entry = replace(entry, state=State.FAILED, text=text)
        else:
            sent = f"Sent (message id {entry.message_id})."
            if waiting_for(message.ack):
                if entry.message_id in self._waiting:  # feedback may have come already
                    entry = replace(
                        entry, state=State.WAITING, text=f"{sent} Waiting for feedback…"
                    )
                    self._waiting[entry.message_id] = entry
                else:
                    return self._latest(entry)
            else:
                entry = replace(entry, state=State.SENT, text=sent)
        self._put(entry)
        return entry

    def _latest(self, entry: Sent) -> Sent:
        for found in self.entries:
            if found.message_id == entry.message_id and found.at == entry.at:
                return found
        return entry

    async def _ensure_client(self) -> C2DClient:
        if self._client is None:
            # A saved connection's key comes from the system keyring, which may take its
            # time (D-Bus): never on the window's loop.
            endpoint = await asyncio.to_thread(self.endpoint_for)
            if self._client is not None:  # another send made it meanwhile
                return self._client
            if endpoint is None:
                raise EndpointError("Connect to a hub first.")
            self._window_loop = asyncio.get_running_loop()
            if self._io is None:
                self._io = IoThread("c2d")
            self._client = C2DClient(endpoint, self._from_io, self._problem_from_io)
        return self._client

    # -- called on the I/O loop -----------------------------------------------------------

    def _from_io(self, records: list[FeedbackRecord]) -> None:
        window = self._window_loop
        if window is not None and not window.is_closed():
            window.call_soon_threadsafe(self._feedback, records)

    def _problem_from_io(self, text: str | None) -> None:
        window = self._window_loop
        if window is not None and not window.is_closed():
            window.call_soon_threadsafe(self.feedback_problem.set, text)

    # -- on the window's loop -------------------------------------------------------------

    def _feedback(self, records: list[FeedbackRecord]) -> None:
        if self.feedback_problem.value is not None:
            self.feedback_problem.set(None)
        for record in records:
            entry = self._waiting.pop(record.original_message_id, None)
            if entry is None:
                continue  # sent by someone else, or before the app started
            success = record.status.casefold() == "success"
            self._put(
                replace(
                    entry,
                    state=State.DELIVERED if success else State.UNDELIVERED,
                    text=outcome_text(record),
                    feedback=record.status,
                )
            )

    def hub_changed(self, _service: object = None) -> None:
        """Follow the session: a new hub (or none) gets a new client."""
        if self._client is None and not self._waiting:
            return
        task = asyncio.get_running_loop().create_task(self.reset())
        self._resetting = task  # a reference, so the task is not collected midway

    async def reset(self) -> None:
        """The hub changed (or closed): end the client; waiting entries stop waiting."""
        client, self._client = self._client, None
        for message_id, entry in list(self._waiting.items()):
            self._waiting.pop(message_id)
            self._put(
                replace(
                    entry,
                    state=State.SENT,
                    text=f"{entry.text.removesuffix(' Waiting for feedback…')} "
                    "No feedback: the app left that hub.",
                )
            )
        self.feedback_problem.set(None)
        if client is not None and self._io is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT * 2):
                    await self._io.run(client.close())

    async def aclose(self) -> None:
        if self._resetting is not None:
            await self._resetting
        await self.reset()
        io, self._io = self._io, None
        if io is not None:
            await asyncio.get_running_loop().run_in_executor(None, io.close)
