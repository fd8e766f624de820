"""Cloud-to-device queues: one per device, with IoT Hub's message lifecycle.

IoT Hub keeps up to 50 messages per device (C.6); a message is *enqueued*, handed to the
device (*invisible* under a lock token until completed, rejected or abandoned), and
dead-lettered when it expires or has been delivered ``max_delivery_count`` times.
Abandoning puts it back at the head of the queue. The core takes messages with
:meth:`C2DQueues.receive` and hands them to the device's connection when it is connected
and subscribed (``HubCore.send_c2d``); the transport settles them with the lock token
(MQTT: completed on PUBACK). In memory: a hub restart empties the queues.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from twin_explorer.localhub.errors import HubError

MAX_QUEUE_DEPTH = 50  # messages per device (IoT Hub's quota, C.6)
MAX_MESSAGE_BYTES = 64 * 1024  # body and properties of one C2D message (IoT Hub's limit)
MAX_DELIVERY_COUNT = 10
DEFAULT_TTL_NS = 3600 * 10**9  # IoT Hub's default time to live: one hour
LOCK_NS = 60 * 10**9
MAX_EXPIRY_ENTRIES = 100_000  # then the expiry index is rebuilt from the live queues


def queue_full(device_id: str) -> HubError:
    return HubError(
        403,
        "DeviceMaximumQueueDepthExceeded",
        403004,
        f"The queue of device {device_id!r} already holds {MAX_QUEUE_DEPTH} messages.",
    )


def too_large(size: int) -> HubError:
    return HubError(
        413,
        "MessageTooLarge",
        413001,
        f"The message is {size} bytes; a cloud-to-device message may be at most "
        f"{MAX_MESSAGE_BYTES} bytes.",
    )


def message_size(body: bytes, properties: dict[str, Any]) -> int:
    """What counts against the size limit: the body and the properties' names and values."""
    return len(body) + sum(len(str(k)) + len(str(v)) for k, v in properties.items())


def lock_lost(lock_token: str) -> HubError:
    return HubError(
        412, "DeviceMessageLockLost", 412002, f"No locked message has token {lock_token!r}."
    )


@dataclass(frozen=True, slots=True)
class C2DMessage:
    message_id: str
    device_id: str
    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    enqueued_ns: int = 0
    expiry_ns: int = 0
    delivery_count: int = 0
    lock_token: str | None = None
    sequence_number: int = 0  # per device, from 1, in the order messages were queued


@dataclass
class _Queue:
    waiting: deque[C2DMessage] = field(default_factory=deque)
    locked: dict[str, tuple[C2DMessage, int]] = field(default_factory=dict)  # token -> until
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __len__(self) -> int:
        return len(self.waiting) + len(self.locked)


class C2DQueues:
    """Per-device queues; ``clock`` is nanoseconds since the epoch (the core's clock)."""

    def __init__(
        self,
        clock: Callable[[], int],
        *,
        max_depth: int = MAX_QUEUE_DEPTH,
        max_delivery_count: int = MAX_DELIVERY_COUNT,
        lock_ns: int = LOCK_NS,
        on_outcome: Callable[[C2DMessage, str], None] | None = None,
    ) -> None:
        self._clock = clock
        # Told when a message's life ends: Success, Rejected, Expired, DeliveryCountExceeded.
        self._on_outcome = on_outcome or (lambda message, status: None)
        self._max_depth = max_depth
        self._max_delivery_count = max_delivery_count
        self._lock_ns = lock_ns
        self._queues: dict[str, _Queue] = {}
        self._ids = itertools.count(1)
        self.dead_letters: deque[C2DMessage] = deque(maxlen=1000)
        # (expiry, device) of every message queued: the sweep finds the expired ones
        # without looking at the queues that have none (at most one entry per message).
        self._expiries: list[tuple[int, str]] = []

    def enqueue(
        self,
        device_id: str,
        body: bytes,
        properties: dict[str, Any] | None = None,
        *,
        message_id: str | None = None,
        ttl_ns: int = DEFAULT_TTL_NS,
    ) -> C2DMessage:
        """Queue a message for a device; 403004 when its queue is full, 413001 when the
        message is over 64 KB."""
        size = message_size(body, properties or {})
        if size > MAX_MESSAGE_BYTES:
            raise too_large(size)
        queue = self._queues.setdefault(device_id, _Queue())
        self._expire(device_id, queue)
        if len(queue) >= self._max_depth:
            raise queue_full(device_id)
        now = self._clock()
        message = C2DMessage(
            message_id or format(next(self._ids), "x"),
            device_id,
            bytes(body),
            dict(properties or {}),
            now,
            now + ttl_ns,
            sequence_number=next(queue.sequence),
        )
        queue.waiting.append(message)
        heapq.heappush(self._expiries, (message.expiry_ns, device_id))
        if len(self._expiries) > MAX_EXPIRY_ENTRIES:  # mostly messages settled long ago
            self._expiries = [
                (m.expiry_ns, d)
                for d, q in self._queues.items()
                for m in [*q.waiting, *(locked for locked, _ in q.locked.values())]
            ]
            heapq.heapify(self._expiries)
        return message

    def expire_due(self) -> None:
        """Dead-letter the messages whose time ran out (feedback ``Expired``) though nobody
        looked at their queue, as IoT Hub does; the runtime calls this on a timer."""
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, device_id = heapq.heappop(self._expiries)
            queue = self._queues.get(device_id)
            if queue is not None:
                self._expire(device_id, queue)

    def receive(self, device_id: str, *, lock_ns: int | None = None) -> C2DMessage | None:
        """The next message, locked for delivery (``lock_token`` set) for ``lock_ns``
        (the queue's lock time by default), or None."""
        queue = self._queues.get(device_id)
        if queue is None:
            return None
        self._expire(device_id, queue)
        if not queue.waiting:
            return None
        message = queue.waiting.popleft()
        # A GUID, as IoT Hub's: unique across hub restarts, which empty the queues.
        token = str(uuid.uuid4())
        locked = replace(message, delivery_count=message.delivery_count + 1, lock_token=token)
        queue.locked[token] = (locked, self._clock() + (lock_ns or self._lock_ns))
        return locked

    def complete(self, device_id: str, lock_token: str) -> C2DMessage:
        """The device took the message: it leaves the queue."""
        message = self._settle(device_id, lock_token)
        self._on_outcome(message, "Success")
        return message

    def reject(self, device_id: str, lock_token: str) -> C2DMessage:
        """The device refused the message: it is dead-lettered."""
        message = self._settle(device_id, lock_token)
        self.dead_letters.append(message)
        self._on_outcome(message, "Rejected")
        return message

    def abandon(self, device_id: str, lock_token: str) -> C2DMessage:
        """The device gave the message back: first in line again, unless delivered too often."""
        message = self._settle(device_id, lock_token)
        self._requeue(device_id, self._queues[device_id], message)
        return message

    def depth(self, device_id: str) -> int:
        """Messages waiting or locked for a device."""
        queue = self._queues.get(device_id)
        if queue is None:
            return 0
        self._expire(device_id, queue)
        return len(queue)

    def purge(self, device_id: str) -> int:
        """Drop every message of a device (also its queue); how many there were."""
        queue = self._queues.pop(device_id, None)
        return 0 if queue is None else len(queue)

    def _settle(self, device_id: str, lock_token: str) -> C2DMessage:
        queue = self._queues.get(device_id)
        if queue is not None:
            self._expire(device_id, queue)
        found = None if queue is None else queue.locked.pop(lock_token, None)
        if found is None:
            raise lock_lost(lock_token)
        return found[0]

    def _requeue(self, device_id: str, queue: _Queue, message: C2DMessage) -> None:
        if message.delivery_count >= self._max_delivery_count:
            self.dead_letters.append(message)
            self._on_outcome(message, "DeliveryCountExceeded")
        else:
            queue.waiting.appendleft(replace(message, lock_token=None))

    def _expire(self, device_id: str, queue: _Queue) -> None:
        """Dead-letter expired messages; a lock that ran out gives its message back."""
        now = self._clock()
        for token, (message, until) in list(queue.locked.items()):
            if until <= now:
                del queue.locked[token]
                self._requeue(device_id, queue, message)
        for message in [m for m in queue.waiting if m.expiry_ns <= now]:
            queue.waiting.remove(message)
            self.dead_letters.append(message)
            self._on_outcome(message, "Expired")
