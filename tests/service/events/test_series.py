"""Plotting telemetry fields: paths people type, numbers found, series bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from twin_explorer.service.events import series as series_module
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.events.series import (
    PathError,
    Plots,
    numeric_paths,
    parse_path,
    value_at,
)
from twin_explorer.service.events.stream import EventStream


def _telemetry(body, *, device="d1", module=None, source=Source.TELEMETRY) -> EventRecord:
    return EventRecord(datetime.now(UTC), source, device, module, json.dumps(body).encode())


def test_paths_people_type():
    assert parse_path(" engine.rpm ") == ("engine", "rpm")
    assert parse_path("values[2].t") == ("values", 2, "t")
    for bad in ("", "a..b", ".a", "a.", "[0]", "a[x]"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_only_numbers_are_plotted():
    doc = {"t": 21.5, "on": True, "name": "x", "v": [1, {"w": 2}]}
    assert numeric_paths(doc) == ["t", "v[0]", "v[1].w"]
    assert value_at(doc, ("v", 1, "w")) == 2.0
    assert value_at(doc, ("on",)) is None
    assert value_at(doc, ("v", 5)) is None


async def test_a_series_per_identity_bounded_and_fed_by_batches(monkeypatch):
    monkeypatch.setattr(series_module, "MAX_POINTS", 3)
    stream = EventStream()
    stream.log.extend([_telemetry({"t": 1}), _telemetry({"t": 9}, source=Source.TWIN)])
    plots = Plots(stream, max_series=2)
    plots.plot("t")  # what is kept already counts
    assert [(s.name, list(s.values)) for s in plots] == [("d1 · t", [1.0])]
    stream.batches.emit([_telemetry({"t": n}, module="m") for n in range(5)])
    stream.batches.emit([_telemetry({"t": 7}, device="d3")])  # a third line: over the limit
    assert [(s.name, list(s.values)) for s in plots] == [
        ("d1 · t", [1.0]),
        ("d1/m · t", [2.0, 3.0, 4.0]),
    ]
    assert plots.skipped == 1
    plots.clear()
    assert len(plots) == 0 and not plots.paths
