"""Jobs benchmark: a twin-update job over many device twins, and how free the loop stays.

    python benchmarks/jobs.py [--devices 100000]

Seeds a fresh hub file with ``--devices`` device twins, runs one ``scheduleUpdateTwin`` job
over all of them on the hub core's runner, and meanwhile ticks a 2 ms timer on the same
loop. Prints the job's time and rate, and the gaps between ticks (p50, p99, max): how
long any other connection could have waited for the loop while the job ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk


async def run(devices: int) -> None:
    with tempfile.TemporaryDirectory() as folder, HubCore.open(Path(folder)) as core:
        began = time.monotonic()
        seed_bulk(core, devices, 0)
        print(f"seeded {devices} devices in {time.monotonic() - began:.1f} s")
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.002)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        loop = asyncio.get_running_loop()
        runner, ticks = loop.create_task(core.jobs.run()), loop.create_task(ticker())
        began = time.monotonic()
        core.jobs.create(
            "all",
            {
                "type": "scheduleUpdateTwin",
                "queryCondition": "tags.floor < 20",
                "updateTwin": {"properties": {"desired": {"fw": "2.0"}}},
            },
        )
        while True:  # the job's own status is the end signal a client has, too
            if core.jobs.get("all")["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        took = time.monotonic() - began
        for task in (ticks, runner):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        gaps.sort()
        p50, p99 = gaps[len(gaps) // 2], gaps[int(len(gaps) * 0.99)]
        print(f"{'job over':<12}{devices} twins in {took:.1f} s ({devices / took:,.0f} twins/s)")
        print(
            f"{'loop gaps':<12}p50 {p50 * 1e3:.1f} ms  p99 {p99 * 1e3:.1f} ms  "
            f"max {gaps[-1] * 1e3:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    asyncio.run(run(parser.parse_args().devices))


if __name__ == "__main__":
    main()
