"""Python's cyclic garbage collected on the UI thread only.

Automatic collection runs on whichever thread happens to allocate: an SDK or I/O worker.
A Qt object in a cycle collected there cannot be deleted there, so PySide defers its
deletion to the UI thread's next Python call, which can be deep inside a paint event
(seen: a window's menu deleted from inside an event filter during painting, deadlocking on
a Qt lock). With automatic collection off, a timer on the UI thread collects whenever the
thresholds say so, at a point where deleting widgets is safe. Reference counting, which
frees almost everything, is untouched.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class UiThreadCollector(QObject):
    """Owns the timer; made once per application (``collect_on_ui_thread``)."""

    def __init__(self, parent: QObject, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)
        gc.disable()

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds, as the
        interpreter would have, oldest first so one pass does it."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        for generation in (2, 1, 0):
            if thresholds[generation] and counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Back to automatic collection (tests end their GUI session with this)."""
        self._timer.stop()
        gc.enable()


_collector: UiThreadCollector | None = None


def collect_on_ui_thread(app: QObject) -> UiThreadCollector:
    global _collector
    if _collector is None:
        _collector = UiThreadCollector(app)
    return _collector
