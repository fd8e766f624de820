"""The loop watchdog logs a blocked hub loop, with where it is blocked, and its end."""

from __future__ import annotations

import asyncio

from tests.localhub.test_mqtt_server_support import LogWatch, watch_log
from twin_explorer.localhub.runtime.watchdog import LoopWatchdog

WATCHDOG_LOG = "twin_explorer.localhub.runtime.watchdog"


def block_the_loop_until_reported(log: LogWatch) -> str:
    """Stand-in for blocking work on the loop: holds it until the watchdog has spoken."""
    return log.wait_for("has not run", timeout=10)


async def test_a_blocked_loop_is_logged_with_its_stack_and_its_end() -> None:
    watchdog = LoopWatchdog(threshold=0.2, interval=0.02)
    with watch_log(WATCHDOG_LOG) as log:
        watchdog.start()
        try:
            stall_report = block_the_loop_until_reported(log)
            await log.wait_for_async("runs again", within=10)
        finally:
            watchdog.stop()
    assert "block_the_loop_until_reported" in stall_report
    assert watchdog.longest_stall >= 0.2


async def test_a_turning_loop_logs_nothing() -> None:
    watchdog = LoopWatchdog(threshold=2.0, interval=0.02)
    with watch_log(WATCHDOG_LOG) as log:
        watchdog.start()
        try:
            for _ in range(20):  # about ten heartbeats' worth of a busy but turning loop
                await asyncio.sleep(0.02)
        finally:
            watchdog.stop()
    assert log.messages == []
    assert watchdog.longest_stall == 0.0
