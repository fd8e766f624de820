"""How long Twin Explorer takes to start: to a shown window, and to a filled device tree.

    python packaging/measure_start.py                  # frozen build and source, offscreen
    python packaging/measure_start.py --xvfb --runs 5  # on a real X server (Xvfb)
    python packaging/measure_start.py --only frozen --json times.json

Each run starts the app on the built-in local hub in a fresh app home and times, from
process start, the log lines "main window shown" and "tree filled" (the tree's first
rows from the local hub, which the app starts as a child process). "first start" runs
on a new home (the hub makes its CA and demo data); "next start" runs again on that
same home. The OS file cache is warm after the first run of each kind, as on a
machine where the app was used before. The app is then closed with SIGTERM, the way a
service manager would, which also stops its hub. Prints a table; --json writes it too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from build import ROOT, folder_size, launcher

sys.path.insert(0, str(ROOT))
from tests.xserver import xvfb

FROZEN = launcher(ROOT / "dist")
MARKS = {"window": "main window shown", "tree": "tree filled"}
TIMEOUT = 120.0
POLL = 0.01  # seconds between looks at the log file: the timing resolution


def command(kind: str, frozen: Path) -> list[str]:
    if kind == "frozen":
        return [str(frozen)]
    return [sys.executable, "-m", "twin_explorer"]


def time_start(cmd: list[str], home: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds from launch to each mark in the app's log file."""
    log = home / "logs" / "app.log"
    offset = log.stat().st_size if log.exists() else 0
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**env, "TWIN_EXPLORER_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen: dict[str, float] = {}
    try:
        while len(seen) < len(MARKS):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"the app exited ({proc.returncode}) before {MARKS}:\n{err}")
            if time.monotonic() - started > TIMEOUT:
                raise RuntimeError(f"no {MARKS} in {log} within {TIMEOUT:.0f} s")
            if log.exists():
                with log.open(encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    text = handle.read()
                now = time.monotonic() - started
                for key, mark in MARKS.items():
                    if key not in seen and mark in text:
                        seen[key] = now
            time.sleep(POLL)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return seen


def measure(kinds: list[str], runs: int, frozen: Path, env: dict[str, str]) -> list[dict]:
    rows = []
    for kind in kinds:
        for run in range(runs):
            with tempfile.TemporaryDirectory(prefix="twin-explorer-start-") as tmp:
                home = Path(tmp)
                for start in ("first start", "next start"):
                    marks = time_start(command(kind, frozen), home, env)
                    rows.append({"kind": kind, "run": run + 1, "start": start, **marks})
                    print(
                        f"  {kind:<7} run {run + 1} {start:<11} window {marks['window']:5.2f} s"
                        f"  tree {marks['tree']:5.2f} s",
                        flush=True,
                    )
    return rows


def summary(rows: list[dict]) -> list[str]:
    lines = [f"{'app':<8}{'start':<13}{'window shown (s)':>18}{'tree filled (s)':>17}"]
    for kind in dict.fromkeys(row["kind"] for row in rows):
        for start in ("first start", "next start"):
            chosen = [r for r in rows if r["kind"] == kind and r["start"] == start]
            window = statistics.median(r["window"] for r in chosen)
            tree = statistics.median(r["tree"] for r in chosen)
            lines.append(f"{kind:<8}{start:<13}{window:>18.2f}{tree:>17.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("frozen", "source"), help="measure one kind only")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--frozen", type=Path, default=FROZEN, help="the built launcher")
    parser.add_argument("--xvfb", action="store_true", help="run on Xvfb instead of offscreen")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    kinds = [args.only] if args.only else ["frozen", "source"]
    if "frozen" in kinds and not args.frozen.exists():
        parser.error(f"{args.frozen} does not exist; build it with packaging/build.py")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    with contextlib.ExitStack() as stack:
        if args.xvfb:
            env["DISPLAY"] = stack.enter_context(xvfb())
            env["QT_QPA_PLATFORM"] = "xcb"
        else:
            env["QT_QPA_PLATFORM"] = "offscreen"
        platform = env["QT_QPA_PLATFORM"]
        print(f"median of {args.runs} runs on {platform}, {os.cpu_count()} CPUs", flush=True)
        rows = measure(kinds, args.runs, args.frozen, env)
    print()
    for line in summary(rows):
        print(line)
    if "frozen" in kinds:
        folder = args.frozen.parent
        print(f"\nfrozen folder {folder}: {folder_size(folder) / 1e6:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"platform": platform, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
