"""Bulk twin changes on a big hub: preview time, apply rate and the UI loop's lag.

For each size, a local hub is seeded with N devices x 1 module (cached between runs),
started as a subprocess, and the real Change Many Twins window (offscreen, on a qasync
loop) previews and applies one change to the N module twins a query selects:
``SELECT * FROM devices.modules``. A 10 ms heartbeat measures how late the loop is while
the preview and the run go (target p99 <= 50 ms).

    python benchmarks/bulk.py [--sizes 10000 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import qasync
from PySide6.QtWidgets import QApplication
from tree_bench import Heartbeat, p, rss_mb, until

from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk
from twin_explorer.service.bulk.run import Outcome, RunState
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubProcess
from twin_explorer.ui.panes.bulk.dialog import BulkChangeDialog

QUERY = "SELECT * FROM devices.modules"


def seeded_dir(devices: int) -> Path:
    data_dir = Path(tempfile.gettempdir()) / f"twin-explorer-bulk-bench-{devices}"
    marker = data_dir / ".seeded"
    if not marker.exists():
        print(f"seeding {devices:,} devices x 1 module (once)…", file=sys.stderr)
        with HubCore.open(data_dir) as core:
            seed_bulk(core, devices, 1)
        marker.write_text("ok")
    return data_dir


async def measure(devices: int, runs_root: Path) -> dict[str, float]:
    hub = LocalHubProcess(seeded_dir(devices), demo=False, mqtt_port=0)
    info = await hub.start()
    service = HubService(
        info.service_connection_string, ca_cert=info.ca_cert, use_env_proxies=False
    )
    dialog = BulkChangeDialog(lambda: service, runs_root=runs_root)
    dialog.show()
    results: dict[str, float] = {"twins": devices}
    beat = Heartbeat()
    try:
        dialog.use_query.setChecked(True)
        dialog.query_edit.setText(QUERY)
        stamp = time.strftime("%H%M%S")  # a new value each run: every twin changes
        dialog.patch_edit.setPlainText(json.dumps({"tags": {"bench": stamp}}))
        beat.start()
        start = time.perf_counter()
        dialog.preview()
        await until(lambda: dialog.model.rowCount() == devices, 1800, "the preview")
        results["preview_s"] = time.perf_counter() - start
        await beat.stop()
        results["preview_lag_p99_ms"] = p(beat.lags, 0.99) * 1000
        results["preview_lag_max_ms"] = max(beat.lags) * 1000
        results["rss_mb_after_preview"] = rss_mb()

        run = dialog.run
        assert run is not None
        beat.start()
        start = time.perf_counter()
        dialog.apply()
        await until(lambda: run.state is RunState.FINISHED and not dialog.applying, 3600, "run")
        elapsed = time.perf_counter() - start
        await beat.stop()
        progress = run.progress()
        results["apply_s"] = elapsed
        results["apply_rate_per_s"] = progress.counts[Outcome.APPLIED] / elapsed
        results["applied"] = progress.counts[Outcome.APPLIED]
        results["failed_or_conflict"] = (
            progress.counts[Outcome.FAILED] + progress.counts[Outcome.CONFLICT]
        )
        results["apply_lag_p99_ms"] = p(beat.lags, 0.99) * 1000
        results["apply_lag_max_ms"] = max(beat.lags) * 1000
    finally:
        await dialog.aclose()
        dialog.deleteLater()
        await service.aclose()
        await hub.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    table: list[dict[str, float]] = []
    with loop, tempfile.TemporaryDirectory() as runs:
        os.environ.setdefault("TWIN_EXPLORER_HOME", runs)
        for size in args.sizes:
            table.append(loop.run_until_complete(measure(size, Path(runs))))
    keys = [
        ("twins", "twins", "", None),
        ("preview_s", "preview (s)", "", None),
        ("preview_lag_p99_ms", "lag p99 preview (ms)", "≤ 50", 50),
        ("apply_rate_per_s", "apply (twins/s)", "", None),
        ("apply_s", "apply (s)", "", None),
        ("apply_lag_p99_ms", "lag p99 apply (ms)", "≤ 50", 50),
        ("apply_lag_max_ms", "lag max apply (ms)", "", None),
        ("failed_or_conflict", "failed/conflict", "0", 0),
        ("rss_mb_after_preview", "RSS after preview (MB)", "", None),
    ]
    print(f"{'measure':<26}" + "".join(f"{int(row['twins']):>14,}" for row in table) + "  target")
    for key, label, target, limit in keys[1:]:
        cells = "".join(f"{row[key]:>14.1f}" for row in table)
        missed = limit is not None and any(row[key] > limit for row in table)
        print(f"{label:<26}{cells}  {target}{'  MISSED' if missed else ''}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
