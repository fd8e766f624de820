"""Cloud-to-device messages a simulated DEVICE receives, and what it answers.

Two ways in, one list:

* By hand (default): the inbox polls the hub's device HTTPS endpoint a few seconds apart
  (backing off after errors). Each message arrives locked; it stays *pending* until
  someone completes, rejects or abandons it, or its lock runs out (the hub then offers it
  again, and the same row shows the new delivery). The MQTT client does not subscribe to
  C2D in this mode, or the hub would hand it every message first.
* On arrival (MQTT): the device SDK subscribes; MQTT completes a message when the device
  acknowledges it, so rows arrive already *completed* and cannot be settled.
* Off: neither; messages wait at the hub (what ``twin-explorer simulate`` does unless
  told otherwise: a headless device that locked messages and never settled them would
  have the hub dead-letter them after enough deliveries).

Runs on the module's loop; listeners hear ``message_received`` / ``message_settled`` /
``inbox`` (polling state) events through the module's ``_emit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from twin_explorer.simulator.device_https import LOCK_LOST, DeviceHttps, LockLost, PolledMessage
from twin_explorer.simulator.errors import SimulatorError, Unauthorized
from twin_explorer.simulator.events import EventKind
from twin_explorer.twin.clock import utc_now

log = logging.getLogger(__name__)

LOCK_SECONDS = 60  # IoT Hub's default lock; the hub takes 1..300
POLL_SECONDS = 3.0
MAX_BACKOFF = 60.0
MESSAGE_LIMIT = 200  # rows kept; the oldest settled ones go first


class InboxMode(StrEnum):
    BY_HAND = "by_hand"  # HTTPS: complete, reject or abandon each message
    ON_ARRIVAL = "on_arrival"  # MQTT: the protocol completes it on receipt
    OFF = "off"  # not received: messages stay queued at the hub (headless default)


class MessageState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    LOCK_EXPIRED = "lock expired"


class Outcome(StrEnum):
    COMPLETE = "complete"
    REJECT = "reject"
    ABANDON = "abandon"


_SETTLED_STATE = {
    Outcome.COMPLETE: MessageState.COMPLETED,
    Outcome.REJECT: MessageState.REJECTED,
    Outcome.ABANDON: MessageState.ABANDONED,
}
# States after which the hub offers the message again.
_OFFERED_AGAIN = (MessageState.PENDING, MessageState.ABANDONED, MessageState.LOCK_EXPIRED)


@dataclass
class ReceivedMessage:
    number: int  # the inbox's own row id
    received_at: str
    body: bytes
    message_id: str
    content_type: str
    content_encoding: str
    system: dict[str, str]
    properties: dict[str, str]
    via: str  # "https" or "mqtt"
    state: MessageState
    lock_until: float | None = None  # time.time() when the lock runs out
    lock_token: str | None = field(default=None, repr=False)
    note: str = ""  # the last problem settling it, in words

    @property
    def pending(self) -> bool:
        return self.state is MessageState.PENDING

    @property
    def delivery_count(self) -> int | None:
        text = self.system.get("deliveryCount")
        return int(text) if text and text.isdigit() else None

    def summary(self) -> dict[str, Any]:
        """What headless output prints (the body as text, cut short)."""
        return {
            "number": self.number,
            "messageId": self.message_id,
            "state": self.state.value,
            "via": self.via,
            "body": self.body[:200].decode("utf-8", "replace"),
            "properties": self.properties,
        }


class Inbox:
    """A device's received C2D messages; polling runs between ``start`` and ``aclose``."""

    def __init__(
        self,
        emit: Callable[..., Any],
        https: DeviceHttps | None,
        *,
        mode: InboxMode = InboxMode.BY_HAND,
        poll_seconds: float = POLL_SECONDS,
        lock_seconds: int = LOCK_SECONDS,
    ) -> None:
        self._emit = emit
        self._https = https
        self.mode = InboxMode(mode)
        self.poll_seconds = poll_seconds
        self.lock_seconds = lock_seconds
        self.messages: OrderedDict[int, ReceivedMessage] = OrderedDict()
        self.state = "stopped"  # polling state in words, for the panel
        self._numbers = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    # -- lifetime ------------------------------------------------------------------------

    def start(self) -> None:
        """Poll while settling by hand (call on the loop; again after a mode change)."""
        if self._closed:
            return
        if self.mode is InboxMode.ON_ARRIVAL:
            self._tell("MQTT completes each message as it arrives")
            return
        if self.mode is InboxMode.OFF or self._https is None:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._poll())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._tell("stopped")

    async def aclose(self) -> None:
        self._closed = True
        await self.stop()
        if self._https is not None:
            await self._https.aclose()

    def poll_now(self) -> None:
        """Skip the wait before the next poll (after settling, or when asked)."""
        self._wake.set()

    # -- polling -------------------------------------------------------------------------

    def _tell(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit(EventKind.INBOX, state=state)

    async def _poll(self) -> None:
        assert self._https is not None
        delay = self.poll_seconds
        while True:
            self._expire_locks()
            try:
                polled = await self._https.receive(self.lock_seconds)
            except SimulatorError as error:
                # Credentials do not fix themselves: ask again only now and then.
                longest = isinstance(error, Unauthorized)
                delay = MAX_BACKOFF if longest else min(MAX_BACKOFF, delay * 2)
                self._tell(f"{error.text} Trying again in {delay:g} s.")
            else:
                self._tell(f"checking for messages every {self.poll_seconds:g} s")
                delay = self.poll_seconds
                if polled is not None:
                    self._take(polled)
                    continue  # the queue may hold more: ask again at once
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _take(self, polled: PolledMessage) -> ReceivedMessage:
        message_id = polled.system.get("messageId", "")
        lock_until = time.time() + self.lock_seconds
        again = self._find(message_id) if message_id else None
        if again is not None:  # offered again (abandoned, or its lock ran out)
            again.system, again.lock_token = polled.system, polled.lock_token
            again.lock_until, again.received_at = lock_until, utc_now()
            again.state, again.note = MessageState.PENDING, ""
            self.messages.move_to_end(again.number)
            self._emit(EventKind.MESSAGE_RECEIVED, message=again.summary())
            return again
        message = ReceivedMessage(
            number=next(self._numbers),
            received_at=utc_now(),
            body=polled.body,
            message_id=message_id,
            content_type=polled.content_type,
            content_encoding=polled.system.get("contentEncoding", ""),
            system=polled.system,
            properties=polled.properties,
            via="https",
            state=MessageState.PENDING,
            lock_until=lock_until,
            lock_token=polled.lock_token,
        )
        self._add(message)
        return message

    def take_mqtt(self, msg: Any) -> ReceivedMessage:
        """A message the device SDK received (and MQTT completed): on the loop."""
        system = {
            name: str(value)
            for name, value in (
                ("messageId", msg.message_id),
                ("correlationId", msg.correlation_id),
                ("userId", msg.user_id),
                ("expiryTimeUtc", msg.expiry_time_utc),
                ("ack", msg.ack),
                ("contentEncoding", msg.content_encoding),
            )
            if value
        }
        data = msg.data if isinstance(msg.data, bytes) else str(msg.data or "").encode()
        message = ReceivedMessage(
            number=next(self._numbers),
            received_at=utc_now(),
            body=data,
            message_id=str(msg.message_id or ""),
            content_type=str(msg.content_type or ""),
            content_encoding=str(msg.content_encoding or ""),
            system=system,
            properties={str(k): str(v) for k, v in (msg.custom_properties or {}).items()},
            via="mqtt",
            state=MessageState.COMPLETED,
        )
        self._add(message)
        return message

    def _add(self, message: ReceivedMessage) -> None:
        self.messages[message.number] = message
        while len(self.messages) > MESSAGE_LIMIT:
            oldest = next((m for m in self.messages.values() if not m.pending), None)
            del self.messages[(oldest or next(iter(self.messages.values()))).number]
        self._emit(EventKind.MESSAGE_RECEIVED, message=message.summary())

    def _find(self, message_id: str) -> ReceivedMessage | None:
        return next(
            (
                m
                for m in reversed(self.messages.values())
                if m.message_id == message_id and m.state in _OFFERED_AGAIN
            ),
            None,
        )

    def _expire_locks(self) -> None:
        now = time.time()
        for message in self.messages.values():
            if message.pending and message.lock_until is not None and message.lock_until <= now:
                self._lost(message)

    def _lost(self, message: ReceivedMessage) -> None:
        message.state, message.lock_token, message.note = MessageState.LOCK_EXPIRED, None, LOCK_LOST
        self._emit(EventKind.MESSAGE_SETTLED, message=message.summary(), reason=LOCK_LOST)

    # -- settling ------------------------------------------------------------------------

    async def settle(self, number: int, outcome: Outcome | str) -> ReceivedMessage:
        """Complete, reject or abandon a pending message; SimulatorError in words if the
        hub refuses (a lock that ran out marks the message so)."""
        outcome = Outcome(outcome)
        message = self.messages.get(number)
        if message is None or not message.pending or message.lock_token is None:
            raise SimulatorError("Only a pending message can be completed, rejected or abandoned.")
        if self._https is None:
            raise SimulatorError("This device receives over MQTT, which settles messages itself.")
        token = message.lock_token
        call = {
            Outcome.COMPLETE: self._https.complete,
            Outcome.REJECT: self._https.reject,
            Outcome.ABANDON: self._https.abandon,
        }[outcome]
        try:
            await call(token)
        except LockLost:
            if message.lock_token == token:
                self._lost(message)
            raise
        except SimulatorError as error:
            message.note = error.text
            self._emit(EventKind.MESSAGE_SETTLED, message=message.summary(), reason=error.text)
            raise
        if message.lock_token == token:
            message.state, message.lock_token, message.note = _SETTLED_STATE[outcome], None, ""
            self._emit(EventKind.MESSAGE_SETTLED, message=message.summary(), reason="")
        if outcome is Outcome.ABANDON:
            self.poll_now()  # it is first in line again
        return message
