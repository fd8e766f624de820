"""The loop watchdog logs a blocked hub loop, with where it is blocked, and its end."""

from __future__ import annotations

import asyncio
import logging
import threading

from twin_explorer.localhub.watchdog import LoopWatchdog


class _Signal(logging.Handler):
    """Sets an event when a record containing ``text`` arrives (from any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = threading.Event()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.records.append(message)
        if self.text in message:
            self.seen.set()


def block_the_loop_until(event: threading.Event) -> bool:
    """Stand-in for blocking work on the loop: holds it until the watchdog has spoken."""
    return event.wait(10)


async def test_a_blocked_loop_is_logged_with_its_stack_and_its_end() -> None:
    logger = logging.getLogger("twin_explorer.localhub.watchdog")
    blocked, resumed = _Signal("has not run"), _Signal("runs again")
    for handler in (blocked, resumed):
        logger.addHandler(handler)
    watchdog = LoopWatchdog(threshold=0.2, interval=0.02)
    watchdog.start()
    try:
        assert block_the_loop_until(blocked.seen), blocked.records
        await asyncio.to_thread(resumed.seen.wait, 10)
    finally:
        watchdog.stop()
        for handler in (blocked, resumed):
            logger.removeHandler(handler)
    stall_report = next(r for r in blocked.records if "has not run" in r)
    assert "block_the_loop_until" in stall_report
    assert resumed.seen.is_set(), resumed.records
    assert watchdog.longest_stall >= 0.2


async def test_a_turning_loop_logs_nothing() -> None:
    logger = logging.getLogger("twin_explorer.localhub.watchdog")
    any_record = _Signal("")
    logger.addHandler(any_record)
    watchdog = LoopWatchdog(threshold=2.0, interval=0.02)
    watchdog.start()
    try:
        for _ in range(20):  # about ten heartbeats' worth of a busy but turning loop
            await asyncio.sleep(0.02)
    finally:
        watchdog.stop()
        logger.removeHandler(any_record)
    assert any_record.records == []
    assert watchdog.longest_stall == 0.0
