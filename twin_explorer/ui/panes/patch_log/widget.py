"""The patch log pane: filters, the table, pause/clear/export and a status line.

It listens to the app's one ``PatchStream``; events are batched by the model. The view
follows the newest row unless the user has scrolled up, and keeps the rows the user is
looking at in place while the oldest ones drop out at the top.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.errors import ServiceError
from twin_explorer.service.history import TwinHistory
from twin_explorer.service.patchlog import DEFAULT_CAPACITY, PatchFilter
from twin_explorer.service.settings import EXPORT_DIR
from twin_explorer.twin.events import Direction, PatchEvent, PatchStream
from twin_explorer.ui.chrome.settings import settings
from twin_explorer.ui.common.log_table import log_view
from twin_explorer.ui.panes.patch_log.details import PatchDetailsDialog
from twin_explorer.ui.panes.patch_log.history_dialog import TwinHistoryDialog, open_history
from twin_explorer.ui.panes.patch_log.model import (
    COLUMNS,
    DIRECTION,
    IDENTITY,
    SECTION,
    TIME,
    VERSION,
    PatchLogModel,
)

FILTER_DELAY_MS = 150
MIN_ROWS = 3  # the table keeps room for this many rows whatever else is open


def export_folder() -> str:
    """Where Export opens: the folder used last, else the user's documents, else home."""
    last = settings().get(EXPORT_DIR)
    if last and Path(last).is_dir():
        return last
    for kind in (
        QStandardPaths.StandardLocation.DocumentsLocation,
        QStandardPaths.StandardLocation.HomeLocation,
    ):
        folder = QStandardPaths.writableLocation(kind)
        if folder and Path(folder).is_dir():
            return folder
    return str(Path.home())


COLUMN_WIDTHS = {TIME: 96, IDENTITY: 160, DIRECTION: 180, SECTION: 72, VERSION: 64}


class PatchLogWidget(QWidget):
    exported = Signal(str, int)  # path, rows
    errorOccurred = Signal(object)

    def __init__(
        self,
        stream: PatchStream,
        history: TwinHistory | None = None,
        *,
        capacity: int = DEFAULT_CAPACITY,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("patchLogWidget")
        self.stream = stream
        self.history = history if history is not None else TwinHistory()
        self.model = PatchLogModel(capacity, parent=self)
        self._details: PatchDetailsDialog | None = None
        # Where a restore from the history sends its patch (the pane sets it).
        self.service: Callable[[], Any] = lambda: None
        self._follow = True

        self.identity_edit = QLineEdit()
        self.identity_edit.setObjectName("logIdentityFilter")
        self.identity_edit.setPlaceholderText("Identity…")
        self.identity_edit.setClearButtonEnabled(True)
        self.identity_edit.setToolTip("Show only patches of twins whose identity contains this")
        self.text_edit = QLineEdit()
        self.text_edit.setObjectName("logTextFilter")
        self.text_edit.setPlaceholderText("Search patches…")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.setToolTip("Show only patches whose body contains this text")
        self.direction_buttons: dict[Direction, QToolButton] = {}
        for direction in Direction:
            button = QToolButton()
            button.setObjectName(f"logShow_{direction.value}")
            button.setText(direction.value.capitalize())
            button.setCheckable(True)
            button.setToolTip(f"Show only {direction.value} patches (none checked: all)")
            button.toggled.connect(self._apply_filter)
            self.direction_buttons[direction] = button
        self.pause_button = self._tool("logPause", "Pause", "Stop adding rows; resume shows them")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.clear_button = self._tool("logClear", "Clear", "Remove every row")
        self.clear_button.clicked.connect(self.clear)
        self.export_button = self._tool("logExport", "Export…", "Save the visible rows")
        self.export_button.clicked.connect(self.show_export_dialog)

        self.view = log_view("patchLogView", self.model, self)
        rows = self.view.verticalHeader()
        header_height = self.view.horizontalHeader().sizeHint().height()
        self.view.setMinimumHeight(header_height + MIN_ROWS * rows.defaultSectionSize() + 4)
        for column, width in COLUMN_WIDTHS.items():
            self.view.setColumnWidth(column, width)

        self.status = QLabel()
        self.status.setObjectName("logStatus")
        self.status.setToolTip("Rows shown, rows kept, and what pause holds back")
        self.watch_status = QLabel()
        self.watch_status.setObjectName("watchStatus")
        self.watch_status.setToolTip("Twins polled for changes made elsewhere (Twin menu)")

        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(self.identity_edit, 1)
        for button in self.direction_buttons.values():
            filters.addWidget(button)
        filters.addWidget(self.text_edit, 2)
        filters.addSpacing(8)
        for button in (self.pause_button, self.clear_button, self.export_button):
            filters.addWidget(button)
        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.addWidget(self.status, 1)
        footer.addWidget(self.watch_status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)
        layout.addLayout(footer)

        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.identity_edit.textChanged.connect(self._filter_timer.start)
        self.text_edit.textChanged.connect(self._filter_timer.start)
        self.model.on_counts = self._update_status
        self.model.rowsRemoved.connect(self._rows_dropped)
        scroll = self.view.verticalScrollBar()
        scroll.valueChanged.connect(self._scrolled)
        scroll.rangeChanged.connect(self._range_changed)
        self.view.activated.connect(self._activated)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        stream.subscribe(self.model.push)  # the stream and this pane live as long as the window
        self._update_status()

    def _tool(self, name: str, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setObjectName(name)
        button.setText(text)
        button.setToolTip(tip)
        return button

    # -- filters -----------------------------------------------------------------------

    def current_filter(self) -> PatchFilter:
        directions = frozenset(d for d, b in self.direction_buttons.items() if b.isChecked())
        return PatchFilter(self.identity_edit.text(), directions, self.text_edit.text())

    def set_filter(
        self,
        identity: str = "",
        directions: set[Direction] | frozenset[Direction] = frozenset(),
        text: str = "",
    ) -> None:
        """Set the filter controls (as a user would) and apply them now."""
        for button in self.direction_buttons.values():
            button.blockSignals(True)
        for direction, button in self.direction_buttons.items():
            button.setChecked(direction in directions)
        for button in self.direction_buttons.values():
            button.blockSignals(False)
        self.identity_edit.setText(identity)
        self.text_edit.setText(text)
        self._apply_filter()

    def _apply_filter(self, *_: object) -> None:
        self._filter_timer.stop()
        self.model.set_filter(self.current_filter())
        self._follow = True
        self.view.scrollToBottom()

    # -- pause, clear, export ----------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.model.log.paused

    def set_paused(self, paused: bool) -> None:
        if paused == self.model.log.paused:
            return
        if paused:
            self.model.pause()
        else:
            self.model.resume()
        if self.pause_button.isChecked() != paused:
            self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")

    def clear(self) -> None:
        self.model.clear()
        self._follow = True

    def set_capacity(self, rows: int) -> None:
        """Keep at most ``rows`` rows; the oldest go first."""
        self.model.capacity = rows

    def visible_events(self) -> list[PatchEvent]:
        return self.model.log.visible()

    def export(self, path: str | os.PathLike[str]) -> int:
        """Write the rows the table shows, as JSON Lines; returns how many."""
        self.model.flush()
        count = self.model.log.export(path)
        settings().set(EXPORT_DIR, os.path.dirname(os.path.abspath(path)))
        self.exported.emit(os.fspath(path), count)
        self.status.setText(f"Exported {count:,} rows to {os.fspath(path)}")
        return count

    def show_export_dialog(self) -> QFileDialog:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = os.path.join(export_folder(), f"patch-log-{stamp}.jsonl")
        dialog = QFileDialog(self, "Export Patch Log", name)
        dialog.setObjectName("exportLogDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["JSON Lines (*.jsonl)", "All files (*)"])
        dialog.setDefaultSuffix("jsonl")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self._export_chosen)
        dialog.open()  # never exec(): no nested event loop
        return dialog

    def _export_chosen(self, path: str) -> None:
        try:
            self.export(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.errorOccurred.emit(
                ServiceError(f"Could not export the patch log to {path}: {reason}.")
            )

    # -- following the newest row ------------------------------------------------------

    @property
    def following(self) -> bool:
        return self._follow

    def _scrolled(self, value: int) -> None:
        self._follow = value >= self.view.verticalScrollBar().maximum()

    def _range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.view.verticalScrollBar().setValue(maximum)

    def _rows_dropped(self, _parent: QModelIndex, first: int, last: int) -> None:
        # Rows leave only at the top: keep the user's rows where they are on screen.
        if not self._follow and first == 0:
            scroll = self.view.verticalScrollBar()
            scroll.setValue(max(0, scroll.value() - (last + 1)))

    # -- details -----------------------------------------------------------------------

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.show_details(index.row())

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._details is not None and self._details.isVisible() and current.isValid():
            self._details.show_event(self.model.event_at(current.row()))

    def show_details(self, row: int) -> PatchDetailsDialog:
        if self._details is None:
            self._details = PatchDetailsDialog(self.history, self)
            self._details.historyRequested.connect(self.show_history)
        self._details.show_event(self.model.event_at(row))
        self._details.show()  # modeless: click other rows to see them
        self._details.raise_()
        return self._details

    def show_history(self, identity: str | None = None) -> TwinHistoryDialog:
        return open_history(
            self.history, identity, self, service=self.service, publish=self.stream.publish
        )

    # -- status ------------------------------------------------------------------------

    def _update_status(self) -> None:
        log = self.model.log
        parts = [
            f"{len(log):,} of {log.total:,} rows"
            if len(log) != log.total
            else f"{log.total:,} rows"
        ]
        parts.append(f"keeps {log.capacity:,}")
        if log.dropped:
            parts.append(f"{log.dropped:,} oldest dropped")
        if log.paused:
            parts.append(f"paused, {log.held + self.model.queued:,} waiting")
        self.status.setText(" · ".join(parts))

    def set_watch_status(self, text: str) -> None:
        self.watch_status.setText(text)


__all__ = ["COLUMNS", "PatchLogWidget"]
