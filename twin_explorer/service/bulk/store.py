"""A bulk run on disk, so it survives an app restart or a kill and resumes.

One folder per run under the app's data folder (``bulk-runs/<id>/``):

* ``plan.json``: the selection, the change, the hub, the state (rewritten atomically);
* ``items.jsonl``: the preview, one twin per line, written once before anything is sent;
* ``results.jsonl``: one line per twin as its write ends, appended and flushed at once.
  A kill can cut only the last line short; ``load`` ignores a line that does not parse.

A twin with no result line is still to do: on resume its write is tried again with the
etag the preview read, and a twin written just before the kill meets a newer etag,
is re-read and found already changed (see ``preview.recheck``), never written twice
over someone else's change.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from twin_explorer.connection.profiles import atomic_write
from twin_explorer.twin.clock import utc_now

PLAN, ITEMS, RESULTS = "plan.json", "items.jsonl", "results.jsonl"
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def runs_root() -> Path:
    from twin_explorer import paths

    return paths.data_dir() / "bulk-runs"


def new_run_id() -> str:
    # Sortable by time, unique without a lock: 20261206T094500Z-1a2b3c.
    stamp = utc_now().replace("-", "").replace(":", "").split(".")[0]
    return f"{stamp.rstrip('Z')}Z-{secrets.token_hex(3)}"


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._results: Any = None  # the open append handle

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, root: Path | None = None) -> RunFolder:
        root = root or runs_root()
        path = root / new_run_id()
        path.mkdir(parents=True)
        return cls(path)

    def write_plan(self, plan: dict[str, Any]) -> None:
        atomic_write(self.path / PLAN, json.dumps(plan, indent=2, ensure_ascii=False))

    def read_plan(self) -> dict[str, Any]:
        return json.loads((self.path / PLAN).read_text("utf-8"))

    def write_items(self, items: Iterable[dict[str, Any]]) -> None:
        atomic_write(self.path / ITEMS, "".join(_COMPACT(item) + "\n" for item in items))

    def read_items(self) -> Iterator[dict[str, Any]]:
        yield from _read_lines(self.path / ITEMS)

    def append_result(self, result: dict[str, Any]) -> None:
        if self._results is None:
            self._results = open(self.path / RESULTS, "a", encoding="utf-8")  # noqa: SIM115
        self._results.write(_COMPACT(result) + "\n")
        self._results.flush()  # a kill after this line still keeps it (the OS has it)

    def read_results(self) -> Iterator[dict[str, Any]]:
        yield from _read_lines(self.path / RESULTS)

    def close(self) -> None:
        if self._results is not None:
            self._results.close()
            self._results = None


def list_runs(root: Path | None = None) -> list[RunFolder]:
    """Runs kept on disk, newest first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if (p / PLAN).is_file()]
    return [RunFolder(p) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if isinstance(doc, dict):
                yield doc
