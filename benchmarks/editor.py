"""Twin editor benchmark: open, colour, validate and diff twins at IoT Hub's size limits.

    QT_QPA_PLATFORM=offscreen python benchmarks/editor.py [--runs 20] [--json out.json]

Two twins, each with desired and reported just under 32 KB and tags just under 8 KB as
IoT Hub counts them, with the ``$metadata`` the hub keeps: "values" is many small numbers
and objects (the most lines per counted byte, the worst case), "text" mostly strings.
"open" is what a user waits for: the editor widget reads the twin (from an in-memory
service, so no network time counts), validates it, shows the text and colours the lines
on screen; the read-only view fills right after. Targets: open ≤ 100 ms, diff ≤ 20 ms;
"ok" compares the median with the target (the max column shows the worst run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin_explorer.service.edit_text import editable_part, pretty, section_of
from twin_explorer.service.editing import EditSession
from twin_explorer.service.models import Twin
from twin_explorer.twin import section_size
from twin_explorer.twin.document import TwinDocument
from twin_explorer.twin.limits import DESIRED_MAX_BYTES, TAGS_MAX_BYTES

NOW = "2026-01-01T00:00:00.0000000Z"


def _fill(limit: int, prefix: str) -> dict[str, Any]:
    """A nested section just under ``limit`` bytes: objects of mixed values, like devices use."""
    section: dict[str, Any] = {}
    index = 0
    while True:
        entry = {
            "enabled": index % 2 == 0,
            "rate": index * 10,
            "mode": f"mode-{index % 7}",
            "limits": {"min": index, "max": index * 2 + 100, "unit": "celsius"},
            "channels": [index, index + 1, index + 2],
        }
        candidate = {**section, f"{prefix}{index:04d}": entry}
        if section_size(candidate) > limit - 16:
            return section
        section = candidate
        index += 1


def _texts(limit: int, prefix: str) -> dict[str, Any]:
    """A section of mostly text just under ``limit`` bytes: names, URLs, descriptions."""
    section: dict[str, Any] = {}
    index = 0
    while True:
        entry = {"name": f"{prefix} {index}", "url": f"https://example.com/{prefix}/{index}",
                 "note": "calibrated at the factory; see the maintenance log " * 2}  # fmt: skip
        candidate = {**section, f"{prefix}{index:04d}": entry}
        if section_size(candidate) > limit - 16:
            return section
        section = candidate
        index += 1


def twin_at_limits(kind: str = "values") -> dict[str, Any]:
    """A twin with tags, desired and reported at their limits. "values": many small
    numbers and objects (the most lines per byte); "text": mostly strings."""
    fill = _fill if kind == "values" else _texts
    doc = TwinDocument.new(NOW)
    doc.apply_service_patch(
        {
            "tags": fill(TAGS_MAX_BYTES, "tag"),
            "properties": {"desired": fill(DESIRED_MAX_BYTES, "setting")},
        },
        NOW,
    )
    doc.apply_reported_patch(fill(DESIRED_MAX_BYTES, "setting"), NOW)
    return doc.service_view({"deviceId": "bench", "moduleId": "m1", "status": "enabled"})


class MemoryService:
    """Hands out one twin, instantly: the benchmark times the editor, not the network."""

    def __init__(self, twin: dict[str, Any]) -> None:
        self.twin = Twin(twin)

    async def get_twin(self, device_id: str, module_id: str | None = None) -> Twin:
        return self.twin


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _row(name: str, samples: list[float], target: float | None, note: str = "") -> dict:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "operation": name,
        "runs": len(samples),
        "p50_ms": round(p50, 2),
        "max_ms": round(p99, 2),
        "target_ms": target,
        "ok": None if target is None else p50 <= target,
        "note": note,
    }


def _edited(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def _edits(text: str, kind: str, count: int) -> str:
    """``text`` with ``count`` values changed, spread over the document."""
    for index in range(0, count * 5, 5):
        if kind == "values":
            old, new = f'"rate": {index * 10},', f'"rate": {index * 10 + 1},'
        else:
            old, new = f'"name": "setting {index}"', f'"name": "setting {index}b"'
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def run(runs: int) -> list[dict]:
    from PySide6.QtWidgets import QApplication

    from twin_explorer.ui.panes.twin_editor import TwinEditor

    app = QApplication.instance() or QApplication([])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    rows: list[dict] = []
    for kind in ("values", "text"):
        twin = twin_at_limits(kind)
        rows.extend(_run_twin(app, loop, TwinEditor, twin, kind, runs))
    loop.close()
    return rows


def _run_twin(app, loop, editor_class, twin: dict[str, Any], kind: str, runs: int) -> list[dict]:
    rows: list[dict] = []
    text = pretty(editable_part(twin))
    sizes = {name: section_size(section_of(twin, name)) for name in ("tags", "desired")}
    shape = (
        f"tags {sizes['tags']:,} B, desired {sizes['desired']:,} B; editable "
        f"{len(text):,} chars, {text.count(chr(10)) + 1:,} lines"
    )
    editor = editor_class()
    editor.resize(1000, 700)
    editor.show()
    editor.set_service(MemoryService(twin))
    ready: list[float] = []
    settled: list[float] = []

    def open_twin() -> None:
        editor.session = None  # a fresh open every time
        editor.text_view.clear()
        editor.ui.readonly_view.clear()
        start = time.perf_counter()
        task = editor.open_twin("bench", "m1")
        assert task is not None
        loop.run_until_complete(task)
        ready.append((time.perf_counter() - start) * 1000)
        app.processEvents()  # the read-only view and line colours, queued right after
        settled.append((time.perf_counter() - start) * 1000)
        assert editor.session is not None and editor.session.validation.ok
        assert editor.ui.readonly_view.toPlainText()

    open_twin()  # warm up
    ready.clear()
    settled.clear()
    for _ in range(runs):
        open_twin()
    rows.append(_row(f"[{kind}] open: text validated, shown, coloured", ready, 100, shape))
    rows.append(_row(f"[{kind}] open: and the read-only view", settled, None))
    session = editor.session
    assert session is not None
    rows.append(
        _row(f"[{kind}]   EditSession.load", _timed(lambda: session.load(twin), runs), None)
    )
    rows.append(
        _row(
            f"[{kind}]   colour the visible lines",
            _timed(editor.text_view.highlighter.rehighlight, runs),
            None,
        )
    )

    one_change = _edits(text, kind, 1)
    texts = [one_change, text]
    flip = iter(range(10**9))

    def keystroke() -> None:  # what runs when typing pauses: validate, underline, list
        editor.text_view.setPlainText(texts[next(flip) % 2])
        editor.validate_now()

    rows.append(_row(f"[{kind}] pause in typing: validate + show", _timed(keystroke, runs), 100))
    rows.append(
        _row(
            f"[{kind}]   validate text",
            _timed(lambda: EditSession("b").set_text(one_change), runs),
            None,
        )
    )
    if kind == "values":
        broken = text.replace('"mode":', '"mode.x":')
        found = len(EditSession("b").set_text(broken).issues)
        rows.append(
            _row(
                f"[{kind}] validate with issues, each placed",
                _timed(lambda: EditSession("b").set_text(broken), runs),
                100,
                f"{found} issues at their line and column",
            )
        )

    for count in (1, 30):
        session.load(twin)
        session.diff()  # the loaded side is laid out once per load
        session.set_text(_edits(text, kind, count))
        plural = "s" if count > 1 else ""
        rows.append(
            _row(f"[{kind}] diff ({count} value{plural} changed)", _timed(session.diff, runs), 20)
        )

    def show_diff() -> None:
        editor.session.set_text(texts[next(flip) % 2])  # type: ignore[union-attr]
        editor._show_diff()

    rows.append(_row(f"[{kind}] diff view: compute + show", _timed(show_diff, runs), None))
    editor.session.discard()  # type: ignore[union-attr]
    loop.run_until_complete(editor.aclose())
    editor.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = run(args.runs)
    print(f"{'operation':48} {'runs':>5} {'p50 ms':>9} {'max ms':>9} {'target':>7}  note")
    for row in rows:
        target = "" if row["target_ms"] is None else f"≤{row['target_ms']}"
        flag = "" if row["ok"] is None else (" ok" if row["ok"] else " SLOW")
        print(
            f"{row['operation']:48} {row['runs']:>5} {row['p50_ms']:>9.2f} "
            f"{row['max_ms']:>9.2f} {target:>7}{flag}  {row['note']}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
