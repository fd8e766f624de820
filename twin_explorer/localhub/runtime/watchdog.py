"""A watchdog that tells, in the hub's log, when its event loop stops turning.

Everything the hub serves (REST, MQTT, the proxy) runs on one asyncio loop, so anything
that blocks it (a slow fsync, a long query, a bug) freezes every client at once while the
kernel still accepts new connections. A thread outside the loop notices a heartbeat that
is late by more than ``threshold`` seconds and logs where the loop's thread is, once per
stall, then how long the stall lasted.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

logger = logging.getLogger(__name__)

THRESHOLD = 1.0  # seconds without a heartbeat before the log says so
INTERVAL = 0.25  # heartbeat and check period


class LoopWatchdog:
    """Start on the loop to watch (``start()``), stop from it (``stop()``)."""

    def __init__(self, threshold: float = THRESHOLD, interval: float = INTERVAL) -> None:
        self.threshold = threshold
        self.interval = interval
        self.longest_stall = 0.0  # seconds, over the watchdog's lifetime
        self._beat = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._beat = time.monotonic()
        self._heartbeat = self._loop.call_later(self.interval, self._tick)
        self._thread = threading.Thread(target=self._watch, name="hub-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _tick(self) -> None:
        assert self._loop is not None
        self._beat = time.monotonic()
        self._heartbeat = self._loop.call_later(self.interval, self._tick)

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._stopped.wait(self.interval):
            beat = self._beat
            late = time.monotonic() - beat
            if late > self.threshold and stalled_since != beat:
                stalled_since = beat
                logger.warning(
                    "the hub's event loop has not run for %.1f s; every client waits. "
                    "It is busy in:\n%s",
                    late,
                    self._loop_stack(),
                )
            elif stalled_since is not None and beat != stalled_since:
                stall = beat - stalled_since
                self.longest_stall = max(self.longest_stall, stall)
                logger.warning("the hub's event loop runs again after %.1f s", stall)
                stalled_since = None

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread_id or 0)
        if frame is None:
            return "  (the loop's thread is gone)\n"
        return "".join(traceback.format_stack(frame))
