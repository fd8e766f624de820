"""The cyclic garbage collector while events pour in.

Every event the log keeps is a Python object the collector walks on each full
collection, and thousands a second make full collections frequent (every second or two):
each held every thread, the window's too, for 50-200 ms. While a stream is open, full
collections run at a fixed, slow pace instead (``FULL_EVERY`` seconds, on the window's
loop), and what the app built before (modules, Qt wrappers, the window: over a hundred
thousand objects) is frozen out of them until the last stream closes. Young collections
still run as usual; the events themselves hold no cycles and go as soon as the log lets
them go (frozen objects too are freed when nothing refers to them)."""

from __future__ import annotations

import asyncio
import contextlib
import gc

FULL_EVERY = 60.0  # seconds between full collections while a stream is open
NEVER = 1 << 30  # young collections before a full one: not by themselves


class PacedCollector:
    """Full collections every ``every`` seconds while held (see the module doc)."""

    _holders = 0
    _thresholds: tuple[int, int, int] = gc.get_threshold()

    def __init__(self, every: float = FULL_EVERY) -> None:
        self.every = every
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._task is not None

    def hold(self) -> None:
        """Pace full collections from now on (on the running loop); again does nothing."""
        if self._task is not None:
            return
        cls = type(self)
        if cls._holders == 0:
            gc.collect()
            gc.freeze()
            cls._thresholds = gc.get_threshold()
            young, middle, _full = cls._thresholds
            gc.set_threshold(young, middle, NEVER)
        cls._holders += 1
        self._task = asyncio.ensure_future(self._collect())

    async def _collect(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            gc.collect()

    async def release(self) -> None:
        """Back to the collector's own pace (when no other stream holds it)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        cls = type(self)
        cls._holders -= 1
        if cls._holders == 0:
            gc.set_threshold(*cls._thresholds)
            gc.unfreeze()
            gc.collect()
