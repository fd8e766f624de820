"""Guards against known-broken Qt binding releases."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar


class _Emitter(QObject):
    changed = Signal(bool)


def test_bool_signals_keep_true_and_false_alive(qapp):
    # PySide6 6.12.0 decrements True/False on each emission; the process then aborts in
    # bool_dealloc. The app emits bool signals constantly (loading, reachable, toggles).
    emitter = _Emitter()
    bar = QProgressBar()
    seen: list[bool] = []
    emitter.changed.connect(bar.setVisible)
    emitter.changed.connect(seen.append)
    before = (sys.getrefcount(True), sys.getrefcount(False))
    for i in range(2000):
        emitter.changed.emit(i % 2 == 0)
    after = (sys.getrefcount(True), sys.getrefcount(False))
    assert len(seen) == 2000
    # seen holds 1000 of each, so each count rises by 1000; the broken release makes it
    # fall by about as much. Other threads (SDK clients of earlier tests) nudge the counts
    # a little either way, hence the margin.
    assert after[0] - before[0] > 500 and after[1] - before[1] > 500, (before, after)
