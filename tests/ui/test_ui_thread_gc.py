"""Cyclic garbage holding Qt objects is collected on the UI thread, never on a worker."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtWidgets import QMenu, QWidget

from twin_explorer.ui.common.ui_thread_gc import collect_on_ui_thread


def test_a_window_in_a_cycle_is_collected_on_the_ui_thread_while_workers_allocate(qapp, qtbot):
    collect_on_ui_thread(qapp)  # as the app does when it starts
    collected_on: list[threading.Thread] = []
    window = QWidget()
    QMenu(window).addAction("item")  # a window with a menu, as in the deadlock seen
    window.cycle = window  # type: ignore[attr-defined]  # only the cycle collector frees it
    weakref.finalize(window, lambda: collected_on.append(threading.current_thread()))
    del window

    def allocate() -> None:  # a worker allocating a lot: automatic collection ran here
        kept = [[] for _ in range(100_000)]
        assert kept

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert collected_on == []
    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1, 1)  # the next tick of the UI thread's timer collects it all
    try:
        qtbot.waitUntil(lambda: bool(collected_on), timeout=5000)
    finally:
        gc.set_threshold(*thresholds)
    assert collected_on == [threading.main_thread()]
