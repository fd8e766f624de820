"""Cloud-to-device feedback: what became of the messages the service asked to hear about.

A C2D message whose ``iothub-ack`` property is ``positive``, ``negative`` or ``full`` gets a
feedback record when its life ends: ``Success`` (completed), ``Rejected``, ``Expired`` or
``DeliveryCountExceeded`` (``positive`` hears only of success, ``negative`` only of the
rest). Records wait here, in order and bounded, until a service's feedback receiver takes
them (AMQP ``/messages/serviceBound/feedback``), as IoT Hub's feedback queue does; a batch
sent to a receiver comes back (``put_back``) unless the receiver completes it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twin_explorer.localhub.errors import HubError

if TYPE_CHECKING:
    from twin_explorer.localhub.core.c2d import C2DMessage
    from twin_explorer.localhub.core.context import CoreContext

logger = logging.getLogger(__name__)

MAX_RECORDS = 1000  # records kept for a receiver to come; the oldest go first
ACK = "iothub-ack"


class C2DFeedback:
    """Feedback records, and who wants to hear that there are some."""

    def __init__(self, ctx: CoreContext, max_records: int = MAX_RECORDS) -> None:
        self._ctx = ctx
        self._records: deque[dict[str, Any]] = deque(maxlen=max_records)
        self._listeners: list[Callable[[], None]] = []

    def outcome(self, message: C2DMessage, status: str) -> None:
        """A C2D message's life ended with ``status``; record it if the service asked."""
        ack = str(message.properties.get(ACK) or "none").lower()
        success = status == "Success"
        if not (
            ack == "full" or (ack == "positive" and success) or (ack == "negative" and not success)
        ):
            return
        try:
            generation = self._ctx.device(message.device_id)["generationId"]
        except HubError:
            generation = ""
        self._records.append(
            {
                "originalMessageId": message.message_id,
                "enqueuedTimeUtc": self._ctx.now(),
                "statusCode": status,
                "description": status,
                "deviceId": message.device_id,
                "deviceGenerationId": generation,
            }
        )
        self._tell()

    def _tell(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                logger.exception("a C2D feedback listener failed")

    def take(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records, oldest first; they leave the queue."""
        return [self._records.popleft() for _ in range(min(limit, len(self._records)))]

    def put_back(self, records: list[dict[str, Any]], *, tell: bool = True) -> None:
        """Records a receiver took but did not complete: first in line again (``tell``:
        the receivers hear of them)."""
        self._records.extendleft(reversed(records))
        if tell and records:
            self._tell()

    def __len__(self) -> int:
        return len(self._records)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` when records arrive; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None
