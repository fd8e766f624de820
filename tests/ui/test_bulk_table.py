"""The bulk preview table: one row per twin, status filter and text filter, the counts
over the whole run, and the status colours, on a run with outcomes (no hub needed: the
run's items and results are plain data)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from twin_explorer.service.bulk.preview import Plan, PreviewItem, preview_twin
from twin_explorer.service.bulk.run import BulkRun, Outcome, Result
from twin_explorer.service.bulk.store import RunFolder
from twin_explorer.ui.common import theme
from twin_explorer.ui.panes.bulk.table import ALL, CHANGE, STATUS, TWIN, PreviewTableModel

CHANGE_PATCH = {"tags": {"floor": 9}}


def twin(device_id: str, tags: dict) -> dict:
    return {"deviceId": device_id, "etag": f"e-{device_id}", "tags": tags, "properties": {}}


def make_run(tmp_path, n: int = 1000) -> BulkRun:
    items = [preview_twin(twin(f"dev-{i:04d}", {"floor": i % 3 * 9}), CHANGE_PATCH)
             for i in range(n)]  # fmt: skip
    items.append(PreviewItem("blocked-one", None, Plan.BLOCKED, reason="tags too large"))
    results = {
        ("dev-0001", None): Result("dev-0001", None, Outcome.APPLIED),
        ("dev-0002", None): Result("dev-0002", None, Outcome.CONFLICT, "changed"),
    }
    return BulkRun(RunFolder.create(tmp_path), {"kind": "change"}, items, results)


def texts(model: PreviewTableModel, column: int) -> list[str]:
    return [model.index(r, column).data() for r in range(model.rowCount())]


def test_rows_filters_and_counts(qtbot, tmp_path) -> None:
    model = PreviewTableModel()
    run = make_run(tmp_path)
    model.set_run(run)
    assert model.rowCount() == 1001
    assert texts(model, TWIN)[:3] == ["dev-0000", "dev-0001", "dev-0002"]
    assert texts(model, STATUS)[:3] == ["change", "applied", "conflict"]
    assert model.index(0, CHANGE).data() == "tags.floor = 9"

    model.set_filter("conflict")
    assert texts(model, TWIN) == ["dev-0002"]
    model.set_filter("blocked")
    assert texts(model, TWIN) == ["blocked-one"]
    assert model.index(0, 3).data() == "tags too large"
    model.set_filter(ALL, "DEV-099")
    assert texts(model, TWIN) == [f"dev-{i:04d}" for i in range(990, 1000)]
    model.set_filter("skipped", "dev-000")
    assert texts(model, TWIN) == ["dev-0004", "dev-0007"]

    counts = model.counts()  # over the whole run, whatever the filter
    assert counts["applied"] == 1 and counts["conflict"] == 1 and counts["blocked"] == 1
    assert counts["skipped"] == 332  # floor 9 already: i % 3 == 1, less the applied one
    assert counts["change"] == 1000 - 333 - 1  # less the conflict

    # A result arriving moves a row out of the filtered status on refresh.
    model.set_filter("change")
    first = model.item_at(0)
    run.results[first.key] = Result(first.device_id, None, Outcome.FAILED, "boom")
    model.refresh()
    assert first.identity not in texts(model, TWIN)


def test_status_colours_follow_the_theme(qtbot, tmp_path) -> None:
    model = PreviewTableModel()
    model.set_run(make_run(tmp_path, 3))
    conflict = model.index(2, STATUS)
    assert conflict.data(Qt.ItemDataRole.ForegroundRole).color() == theme.colour("error")
    assert conflict.data(Qt.ItemDataRole.BackgroundRole).color() == theme.colour("error_bg")
    assert model.index(0, STATUS).data(Qt.ItemDataRole.BackgroundRole) is None
