"""A run's report as files: JSON Lines (one twin per line, the patch included) or CSV
(one twin per row, the patch as compact JSON), both written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twin_explorer.connection.profiles import atomic_write

COLUMNS = ("identity", "deviceId", "moduleId", "outcome", "change", "detail",
           "etagBefore", "etagAfter", "patch")  # fmt: skip


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]
    atomic_write(Path(path), "".join(line + "\n" for line in lines))
    return len(lines)


def write_csv(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        shown = dict(row, patch=json.dumps(row.get("patch") or {}, separators=(",", ":")))
        writer.writerow({k: "" if shown.get(k) is None else shown[k] for k in COLUMNS})
        count += 1
    atomic_write(Path(path), out.getvalue())
    return count


def write_report(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """By the file's extension: ``.csv`` as CSV, anything else as JSON Lines."""
    if str(path).lower().endswith(".csv"):
        return write_csv(path, rows)
    return write_jsonl(path, rows)
