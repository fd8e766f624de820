"""The jobs runner on a real core and SQLite file: resuming after a restart, and keeping
the loop free while a job works through many twins."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk

TIMEOUT = 60.0


def twin_job(desired: dict[str, Any], condition: str = "is_defined(tags.site)") -> dict:
    return {
        "type": "scheduleUpdateTwin",
        "queryCondition": condition,
        "updateTwin": {"etag": "*", "properties": {"desired": desired}},
    }


async def until(condition, within: float = TIMEOUT) -> None:
    """Wait, giving the loop away each time, until ``condition()`` is true."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0)


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def stats(core: HubCore, job_id: str) -> dict[str, int]:
    return core.jobs.get(job_id)["deviceJobStatistics"]


async def test_a_running_job_resumes_after_restart_and_writes_each_twin_once(
    tmp_path: Path,
) -> None:
    devices = 3000
    with HubCore.open(tmp_path) as core:
        seed_bulk(core, devices, 0)
        runner = asyncio.get_running_loop().create_task(core.jobs.run())
        core.jobs.create("big", twin_job({"mode": "eco"}))
        await until(lambda: stats(core, "big")["succeededCount"] > 0)
        await stop(runner)  # the hub stops mid-job
        before = stats(core, "big")
        assert core.jobs.get("big")["status"] == "running"
        assert 0 < before["succeededCount"] < devices

    with HubCore.open(tmp_path) as core:
        assert core.jobs.get("big")["deviceJobStatistics"] == before
        runner = asyncio.get_running_loop().create_task(core.jobs.run())
        try:
            await until(lambda: core.jobs.get("big")["status"] == "completed")
        finally:
            await stop(runner)
        after = stats(core, "big")
        assert after["succeededCount"] == after["deviceCount"] == devices
        assert after["failedCount"] == after["pendingCount"] == 0
        # Each twin took the patch exactly once: desired $version 1 -> 2.
        rows = core.store.conn.execute(
            "SELECT COUNT(*) FROM twins WHERE is_module = 0"
            " AND json_extract(doc, '$.properties.desired.$version') = 2"
            " AND json_extract(doc, '$.properties.desired.mode') = 'eco'"
        ).fetchone()
        assert rows[0] == devices
        assert len(core.jobs.device_results("big", "completed")) == 1000  # one page


async def test_a_job_over_many_twins_keeps_the_loop_free(tmp_path: Path) -> None:
    devices = 20_000
    with HubCore.open(tmp_path) as core:
        seed_bulk(core, devices, 0)
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.002)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        runner = asyncio.get_running_loop().create_task(core.jobs.run())
        ticks = asyncio.get_running_loop().create_task(ticker())
        try:
            began = time.monotonic()
            core.jobs.create("all", twin_job({"fw": "2.0"}))
            deadline = began + TIMEOUT
            while core.jobs.get("all")["status"] != "completed":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            took = time.monotonic() - began
        finally:
            await stop(ticks)
            await stop(runner)
        assert stats(core, "all")["succeededCount"] == devices
        # A batch is 100 twin writes in one transaction (~20 ms on an idle machine); a
        # job that held the loop would stall it for most of the job. Relative bounds, so
        # a machine busy with other work slows both sides alike.
        stall = max(gaps)
        assert stall < took / 5, f"the loop stalled {stall:.3f} s of the job's {took:.1f} s"
