"""Local-hub store benchmark: seed a large registry, then time queries and twin operations.

    python benchmarks/store_bench.py [--devices 100000] [--modules 2] [--ops 1000] [--json out.json]

Prints a table; ``--json`` also writes the numbers. Runs in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _row(name: str, samples: list[float], note: str = "") -> dict[str, object]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "operation": name,
        "runs": len(samples),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "note": note,
    }


def run(devices: int, modules: int, ops: int, data_dir: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    core = HubCore.open(data_dir)
    start = time.perf_counter()
    seed_bulk(core, devices, modules)
    seconds = time.perf_counter() - start
    identities = devices * (1 + modules)
    rows.append(
        {
            "operation": f"seed {devices:,} devices x {modules} modules",
            "runs": 1,
            "p50_ms": round(seconds * 1000, 1),
            "p99_ms": round(seconds * 1000, 1),
            "note": f"{identities / seconds:,.0f} identities/s",
        }
    )
    width = max(6, len(str(devices - 1)))
    ids = [f"device-{i:0{width}d}" for i in range(devices)]
    rng = random.Random(7)
    runs = 20

    def page(text: str, token: str | None = None) -> Callable[[], object]:
        return lambda: core.query(text, 100, token)

    queries = [
        ("page 1: SELECT * FROM devices", "SELECT * FROM devices", ""),
        (
            "page 1: SELECT * FROM devices.modules",
            "SELECT * FROM devices.modules",
            "",
        ),
        (
            "page 1: WHERE tags.site = 'site-3'",
            "SELECT * FROM devices WHERE tags.site = 'site-3'",
            "1 device in 10 matches",
        ),
        (
            "page 1: WHERE CONTAINS(deviceId, '4242')",
            "SELECT * FROM devices WHERE CONTAINS(deviceId, '4242')",
            "few matches: scans every device",
        ),
        (
            "page 1: modules WHERE reported.status = 'x'",
            "SELECT * FROM devices.modules WHERE properties.reported.status = 'x'",
            "no match: scans every module twin",
        ),
        (
            "SELECT COUNT() FROM devices.modules",
            "SELECT COUNT() AS n FROM devices.modules",
            "",
        ),
        (
            "projection: deviceId, tags.floor WHERE floor=7",
            "SELECT deviceId, tags.floor FROM devices WHERE tags.floor = 7",
            "1 in 20 matches",
        ),
    ]
    for name, text, note in queries:
        rows.append(_row(name, _timed(page(text), runs), note))

    # A deep page costs what the first one does: the token holds the last key.
    token = None
    for _ in range(min(500, devices // 100 - 1)):
        token = core.query("SELECT * FROM devices", 100, token).continuation
    rows.append(
        _row("page 500: SELECT * FROM devices", _timed(page("SELECT * FROM devices", token), runs))
    )

    rows.append(
        _row(
            "twin GET (service view)",
            _timed(lambda: core.get_twin(rng.choice(ids), "module-0"), ops),
        )
    )
    counter = iter(range(10**9))
    rows.append(
        _row(
            "twin PATCH desired (durable commit)",
            _timed(
                lambda: core.patch_twin(
                    rng.choice(ids),
                    "module-1",
                    {"properties": {"desired": {"telemetryInterval": next(counter)}}},
                    None,
                ),
                ops,
            ),
            "fsync per acknowledged write",
        )
    )
    rows.append(
        _row(
            "reported PATCH (durable commit)",
            _timed(
                lambda: core.patch_reported(
                    rng.choice(ids), "module-0", {"temperature": next(counter) / 10}
                ),
                ops,
            ),
        )
    )
    rows.append(
        _row(
            "telemetry record + touch",
            _timed(lambda: core.record_telemetry(rng.choice(ids), None, {}, {}, b"{}"), ops),
            "in memory; activity written behind",
        )
    )
    core.close()
    size = sum(p.stat().st_size for p in data_dir.iterdir()) / 2**20
    rows.append(
        {
            "operation": "database size",
            "runs": 1,
            "p50_ms": "",
            "p99_ms": "",
            "note": f"{size:,.0f} MiB",
        }
    )
    return rows


def _table(rows: list[dict[str, object]]) -> str:
    heads = ["operation", "runs", "p50_ms", "p99_ms", "note"]
    cells = [heads] + [[str(r[h]) for h in heads] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(heads))]
    lines = []
    for index, cell in enumerate(cells):
        lines.append(
            " | ".join(
                c.ljust(w) if i in (0, 4) else c.rjust(w)
                for i, (c, w) in enumerate(zip(cell, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--modules", type=int, default=2)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        rows = run(args.devices, args.modules, args.ops, Path(tmp))
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
