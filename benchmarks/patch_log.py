"""The live patch log under load: event-loop lag and memory in the real main window.

    python benchmarks/patch_log.py [--rate 2000] [--seconds 10] [--capacity 10000] [--json OUT]

Runs the real ``MainWindow`` (offscreen unless QT_QPA_PLATFORM says otherwise) on a
qasync loop and publishes patch events on ``window.patches`` at ``--rate`` per second
for ``--seconds``, while a 10 ms heartbeat (``loop.call_later``) records how late it
fires: that lateness is the event-loop lag a user would feel. Cases:

* idle     - no events: the lag this machine shows anyway (a baseline);
* follow   - the log follows the newest row (the default state);
* filtered - an identity and a text filter are set (half the events match);
* scrolled - the user has scrolled up; old rows drop out above the ones on screen.

Memory: process RSS before and after each case (the ring is full after
capacity / rate seconds, so RSS after the first case should not keep growing), and a
tracemalloc case that pushes 5 x capacity events through the widget and compares the
traced memory once the ring is full with the memory at the end.
Prints a table, and writes the numbers as JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from twin_explorer.twin.events import Direction, PatchEvent, Section  # noqa: E402

HEARTBEAT = 0.010
TICK = 0.005  # the producer wakes every 5 ms and publishes what is due
DIRECTIONS = list(Direction)
SECTIONS = [Section.DESIRED, Section.REPORTED, Section.TAGS]


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, KiB


def make_event(n: int) -> PatchEvent:
    device = f"device-{n % 40:02d}"
    module = f"module-{n % 3}" if n % 2 else None
    body = {
        "telemetryInterval": n % 60,
        "mode": ("eco", "boost", "off")[n % 3],
        "thresholds": {"high": 80 + n % 7, "low": 10 + n % 5, "unit": "celsius"},
        "firmware": {"version": f"1.{n % 10}.{n % 100}", "channel": "stable"},
    }
    return PatchEvent(
        device, module, DIRECTIONS[n % 4], SECTIONS[n % 3], body, version=n, source="bench"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


async def run_case(window, name: str, rate: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    log = window.patch_log
    model = log.model
    inserts = 0

    def count_inserts(*_args: object) -> None:
        nonlocal inserts
        inserts += 1

    model.rowsInserted.connect(count_inserts)
    lags: list[float] = []
    done = asyncio.Event()

    def beat(expected: float) -> None:
        now = loop.time()
        lags.append(max(0.0, now - expected))
        if not done.is_set():
            loop.call_later(HEARTBEAT, beat, now + HEARTBEAT)

    rss_before = rss_mb()
    start = loop.time()
    loop.call_later(HEARTBEAT, beat, start + HEARTBEAT)
    sent = 0
    while (elapsed := loop.time() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            window.patches.publish(make_event(sent))
            sent += 1
        await asyncio.sleep(TICK)
    elapsed = loop.time() - start
    done.set()
    model.flush()
    await asyncio.sleep(0.05)
    model.rowsInserted.disconnect(count_inserts)
    return {
        "case": name,
        "events": sent,
        "seconds": round(elapsed, 2),
        "events_per_s": round(sent / elapsed),
        "inserts": inserts,
        "lag_p50_ms": round(statistics.median(lags) * 1000, 1),
        "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
        "lag_max_ms": round(max(lags) * 1000, 1),
        "rows": model.rowCount(),
        "kept": model.log.total,
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_mb(), 1),
    }


async def tracemalloc_case(window, capacity: int) -> dict:
    """5 x capacity events through the widget with tracing on (slow, so not timed)."""
    model = window.patch_log.model
    window.patch_log.clear()
    window.patch_log.set_filter()
    tracemalloc.start()
    try:
        n = 0
        marks: list[float] = []
        for _ in range(5):
            for _ in range(0, capacity, 1000):
                for _ in range(1000):
                    window.patches.publish(make_event(n))
                    n += 1
                model.flush()
                await asyncio.sleep(0)
            marks.append(tracemalloc.get_traced_memory()[0] / 2**20)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return {
        "case": "tracemalloc",
        "events": n,
        "rows": model.rowCount(),
        "traced_full_mb": round(marks[0], 1),
        "traced_end_mb": round(marks[-1], 1),
        "traced_peak_mb": round(peak, 1),
        "traced_by_round_mb": [round(m, 1) for m in marks],
    }


async def scenario(args: argparse.Namespace) -> list[dict]:
    from twin_explorer.ui.main_window import MainWindow

    window = MainWindow()
    window.resize(1200, 800)
    window.show()
    log = window.patch_log
    log.model.capacity = args.capacity
    await asyncio.sleep(0.2)
    results = [await run_case(window, "idle", 0, args.seconds)]  # the machine's own noise
    results.append(await run_case(window, "follow", args.rate, args.seconds))
    log.set_filter(identity="module", text="stable")  # half the events match
    results.append(await run_case(window, "filtered", args.rate, args.seconds))
    log.set_filter()
    scroll = log.view.verticalScrollBar()
    scroll.setValue(scroll.maximum() // 2)
    results.append(await run_case(window, "scrolled", args.rate, args.seconds))
    results.append(await tracemalloc_case(window, args.capacity))
    await window.shutdown()
    window.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per case")
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        results = loop.run_until_complete(scenario(args))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Patch log: {args.rate} events/s for {args.seconds:g} s per case, capacity "
        f"{args.capacity:,}, {HEARTBEAT * 1000:g} ms heartbeat "
        f"(CPUs {os.cpu_count()}, load {load:.1f})\n"
    )
    header = (
        f"{'case':<10} {'events':>7} {'ev/s':>6} {'inserts':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'rows':>6} {'RSS before':>10} {'RSS after':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        if row["case"] == "tracemalloc":
            continue
        print(
            f"{row['case']:<10} {row['events']:>7} {row['events_per_s']:>6} "
            f"{row['inserts']:>7} {row['lag_p50_ms']:>7} {row['lag_p99_ms']:>7} "
            f"{row['lag_max_ms']:>7} {row['rows']:>6} {row['rss_before_mb']:>9.1f}M "
            f"{row['rss_after_mb']:>8.1f}M"
        )
    traced = results[-1]
    print(
        f"\ntracemalloc: {traced['events']:,} events, {traced['rows']:,} rows kept; traced "
        f"memory per {args.capacity:,} events: {traced['traced_by_round_mb']} MB "
        f"(peak {traced['traced_peak_mb']} MB)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
