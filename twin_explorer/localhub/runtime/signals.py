"""Stopping a headless process on SIGINT and SIGTERM, on every platform."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM (loop handlers, or plain handlers on Windows)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # Windows: no loop signal handlers
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
