"""The Qt side of twin watching: actions, the interval setting, status text.

``TwinWatcher`` (the app model's) does the polling and follows the model's selection and
hub; this object offers the menu actions (watch selected, pin, interval) and turns its
status into one line of text.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from twin_explorer.service.app_model import Selection
from twin_explorer.service.browse import DeviceRow, ModuleRow
from twin_explorer.service.settings import WATCH_INTERVAL
from twin_explorer.service.watch import TwinReader, TwinWatcher, WatchStatus
from twin_explorer.ui.chrome.settings import settings

INTERVALS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def saved_interval() -> float:
    """The watch interval chosen last (kept between runs)."""
    return settings().get(WATCH_INTERVAL)


class WatchController(QObject):
    statusChanged = Signal(str)

    def __init__(
        self, watcher: TwinWatcher, selection: Selection, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.watcher = watcher
        self._row: DeviceRow | ModuleRow | None = None
        self.service: TwinReader | None = None  # the hub's service (restores write with it)
        stops = [watcher.subscribe(self._status_changed), selection.subscribe(self.select)]
        self._unsubscribe = lambda: [stop() for stop in stops]

        self.watch_selected = QAction("&Watch Selected Twin", self, checkable=True, checked=True)
        self.watch_selected.setObjectName("watchSelectedAction")
        self.watch_selected.setToolTip("Poll the selected twin and log changes made elsewhere")
        self.watch_selected.toggled.connect(self._watch_selected)
        self.pin = QAction("&Pin Twin", self, checkable=True)
        self.pin.setObjectName("pinTwinAction")
        self.pin.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.pin.setToolTip("Keep watching this twin when the selection moves on")
        self.pin.setEnabled(False)
        self.pin.triggered.connect(self._pin_triggered)
        self.unpin_all = QAction("Unpin &All Twins", self)
        self.unpin_all.setObjectName("unpinAllAction")
        self.unpin_all.triggered.connect(self.clear_pins)

        self.interval_menu = QMenu("Watch &Interval")
        self.interval_menu.setObjectName("watchIntervalMenu")
        self.interval_group = QActionGroup(self)
        self.interval_actions: dict[float, QAction] = {}
        for seconds in INTERVALS:
            action = QAction(f"Every {seconds:g} s", self, checkable=True)
            action.setData(seconds)
            action.triggered.connect(lambda _on=False, s=seconds: self.set_interval(s))
            self.interval_group.addAction(action)
            self.interval_menu.addAction(action)
            self.interval_actions[seconds] = action
        self._check_interval()

    # -- inputs ------------------------------------------------------------------------

    def set_service(self, service: TwinReader | None) -> None:
        self.service = service
        self.watcher.set_service(service)
        self._status_changed(None)

    def select(self, row: DeviceRow | ModuleRow | None) -> None:
        """Follow the selection (the model tells the watcher): Pin acts on this row."""
        self._row = row
        self._update_pin_action()

    def set_interval(self, seconds: float) -> None:
        self.watcher.interval = seconds
        settings().set(WATCH_INTERVAL, self.watcher.interval)
        self._check_interval()
        self._status_changed(None)

    def pin_row(self, row: DeviceRow | ModuleRow, on: bool = True) -> None:
        if on:
            self.watcher.pin(row.device_id, row.module_id)
        else:
            self.watcher.unpin(row.device_id, row.module_id)
        self._update_pin_action()

    def clear_pins(self) -> None:
        for identity in self.watcher.pinned:
            device_id, _, module_id = identity.partition("/")
            self.watcher.unpin(device_id, module_id or None)
        self._update_pin_action()

    async def aclose(self) -> None:
        self._unsubscribe()
        await self.watcher.aclose()

    # -- actions -----------------------------------------------------------------------

    def _watch_selected(self, on: bool) -> None:
        self.watcher.watch_selected = on

    def _pin_triggered(self, on: bool) -> None:
        if self._row is not None:
            self.pin_row(self._row, on)

    def _update_pin_action(self) -> None:
        row = self._row
        self.pin.setEnabled(row is not None)
        pinned = row is not None and self.watcher.is_pinned(row.device_id, row.module_id)
        self.pin.setChecked(pinned)
        self.unpin_all.setEnabled(bool(self.watcher.pinned))

    def _check_interval(self) -> None:
        action = self.interval_actions.get(self.watcher.interval)
        if action is not None:
            action.setChecked(True)
        else:
            for other in self.interval_actions.values():
                other.setChecked(False)

    def _status_changed(self, _status: WatchStatus | None) -> None:
        self.statusChanged.emit(self.watcher.summary())
