"""One pause shared by every writer of a run when the hub says "too many requests".

A 429 pauses all writers, not just the one that met it: they all spend the same quota.
The pause is the hub's ``Retry-After`` when it gives one, else an exponential backoff
(0.5 s doubling to 30 s, with jitter so writers do not return in step). A write that
succeeds ends the streak.
"""

from __future__ import annotations

import asyncio
import random
import time

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


class Throttle:
    def __init__(self) -> None:
        self.hits = 0  # 429s met in this run
        self._until = 0.0  # monotonic time before which nobody sends
        self._streak = 0

    def hit(self, retry_after: float | None) -> float:
        """Note a 429; returns the pause it set."""
        self.hits += 1
        if retry_after is not None and retry_after >= 0:
            delay = min(retry_after, MAX_BACKOFF)
        else:
            delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2**self._streak)
            delay *= random.uniform(0.8, 1.2)
        self._streak += 1
        self._until = max(self._until, time.monotonic() + delay)
        return delay

    def ok(self) -> None:
        self._streak = 0

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._until

    async def wait(self) -> None:
        # A deadline that may move later while we sleep, not an event anyone sets.
        while (delay := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)
