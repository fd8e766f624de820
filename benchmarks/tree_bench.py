"""The device tree on a large hub: what a support engineer feels.

Seeds a local hub with 100,000 devices x 2 modules (cached between runs), starts it as a
subprocess, opens the real main window offscreen on a qasync loop, and measures:
time from choosing the hub to the first page shown, time for an ID filter to show its
first matches, RSS after scrolling through 10,000 rows, and the event-loop lag p99 while
pages load (a 10 ms heartbeat; lag = how late it fires).

    python benchmarks/tree_bench.py [--devices N] [--rows N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync
from PySide6.QtWidgets import QApplication

from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubProcess
from twin_explorer.ui.main_window import MainWindow


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seeded_dir(devices: int) -> Path:
    data_dir = Path(tempfile.gettempdir()) / f"twin-explorer-bench-{devices}"
    marker = data_dir / ".seeded"
    if not marker.exists():
        print(f"seeding {devices:,} devices x 2 modules (once)…", file=sys.stderr)
        start = time.perf_counter()
        with HubCore.open(data_dir) as core:
            seed_bulk(core, devices, 2)
        marker.write_text(str(time.perf_counter() - start))
    return data_dir


class Heartbeat:
    """Schedules itself every ``interval`` and records how late each beat fires."""

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - due))

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def until(predicate, within: float, what: str) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > within:
            raise TimeoutError(what)
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


async def measure(args) -> dict:
    hub = LocalHubProcess(seeded_dir(args.devices), demo=False, mqtt_port=0)
    info = await hub.start()
    window = MainWindow()
    window.show()
    model = window.tree_pane.model
    results: dict[str, float] = {"devices": args.devices}
    try:
        beat = Heartbeat()
        beat.start()
        rss_before = rss_mb()
        service = HubService(
            info.service_connection_string, ca_cert=info.ca_cert, use_env_proxies=False
        )
        start = time.perf_counter()
        window.tree_pane.set_service(service)
        await until(lambda: model.rowCount() >= 1, 30, "first page")
        results["first_page_s"] = time.perf_counter() - start

        window.tree_pane.filter_edit.blockSignals(True)
        window.tree_pane.filter_edit.setText(args.filter)
        window.tree_pane.filter_edit.blockSignals(False)
        start = time.perf_counter()
        window.tree_pane.reload()
        await until(lambda: model.rowCount() >= 1, 30, "filter matches")
        results["filter_first_match_s"] = time.perf_counter() - start
        results["filter_rows_first_page"] = model.rowCount()

        window.tree_pane.filter_edit.setText("")
        window.tree_pane.reload()
        await until(lambda: model.rowCount() >= 1, 30, "all devices")
        scroll_lag_start = len(beat.lags)
        start = time.perf_counter()
        view = window.tree_pane.view
        # Scroll like a person holding End: every 50 ms; Qt asks for more at the bottom.
        while model.rowCount() < args.rows:
            view.scrollToBottom()
            await asyncio.sleep(0.05)
            if not model.loading and not model.canFetchMore(view.rootIndex()):
                break
        results["scroll_rows"] = model.rowCount()
        results["scroll_s"] = time.perf_counter() - start
        await beat.stop()
        results["rss_mb_after_scroll"] = rss_mb()
        results["rss_mb_growth"] = results["rss_mb_after_scroll"] - rss_before
        results["loop_lag_p50_ms"] = statistics.median(beat.lags) * 1000
        results["loop_lag_p99_ms"] = p(beat.lags, 0.99) * 1000
        results["loop_lag_max_ms"] = max(beat.lags) * 1000
        scroll_lags = beat.lags[scroll_lag_start:]
        results["scroll_lag_p99_ms"] = p(scroll_lags, 0.99) * 1000
        results["scroll_lag_max_ms"] = max(scroll_lags) * 1000

        # Refresh with the rows scrolled through still shown: read again in place.
        if hasattr(model, "refreshed"):
            beat.start()
            done: list[bool] = []
            model.refreshed.connect(lambda: done.append(True))
            start = time.perf_counter()
            window.tree_pane.reload()
            await until(lambda: bool(done), 120, "refresh")
            results["refresh_s"] = time.perf_counter() - start
            results["refresh_rows"] = model.rowCount()
            await beat.stop()
            results["refresh_lag_p99_ms"] = p(beat.lags, 0.99) * 1000
            results["refresh_lag_max_ms"] = max(beat.lags) * 1000
        # Connection states of the rows in sight: one small query.
        if hasattr(window.tree_pane, "refresh_connections"):
            pane = window.tree_pane
            start = time.perf_counter()
            pane.refresh_connections()
            await until(lambda: not pane.polling, 30, "connection poll")
            results["poll_rows"] = len(window.tree_pane.rows_in_sight())
            results["poll_s"] = time.perf_counter() - start
        await service.aclose()
    finally:
        window.close()
        await window.shutdown()
        await hub.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--filter", default="4242")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)  # the run ends when measure() returns
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        results = loop.run_until_complete(measure(args))
    targets = {
        "first_page_s": ("≤ 0.5 s", 0.5),
        "filter_first_match_s": ("≤ 0.5 s", 0.5),
        "rss_mb_after_scroll": ("≤ 300 MB", 300),
        "loop_lag_p99_ms": ("≤ 50 ms", 50),
        "refresh_lag_p99_ms": ("≤ 50 ms", 50),
    }
    print(f"{'measure':<28}{'value':>14}  target")
    for key, value in results.items():
        target = targets.get(key, ("", None))
        ok = "" if target[1] is None else ("  ok" if value <= target[1] else "  MISSED")
        print(f"{key:<28}{value:>14.3f}  {target[0]}{ok}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
