"""The left pane: ID filter, query box and the device -> module tree."""

from __future__ import annotations

import logging

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.browse import DeviceListing, DeviceRow, ModuleRow
from twin_explorer.service.hub import HubService
from twin_explorer.ui import theme
from twin_explorer.ui.columns import ReadableFirstColumn
from twin_explorer.ui.device_tree_model import DeviceTreeModel, RowRole

log = logging.getLogger(__name__)

FILTER_DELAY_MS = 250  # wait for typing to pause before asking the hub


class TreePane(QWidget):
    selectionChanged = Signal(object)  # DeviceRow | ModuleRow | None
    errorOccurred = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deviceTree")
        self._service: HubService | None = None
        self._filled = False  # the current listing has shown rows (logged once)
        self.page_size = 100  # devices per hub round trip

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("deviceFilter")
        self.filter_edit.setPlaceholderText("Filter by device ID…")
        self.filter_edit.setClearButtonEnabled(True)
        self.query_edit = QLineEdit()
        self.query_edit.setObjectName("deviceQuery")
        self.query_edit.setPlaceholderText(
            "Query, e.g. SELECT * FROM devices WHERE tags.site = 'lab'"
        )
        self.query_edit.setClearButtonEnabled(True)

        self.model = DeviceTreeModel(self)
        self.view = QTreeView()
        self.view.setObjectName("deviceTreeView")
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)  # lets Qt skip measuring 100k rows
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.view.header()
        self.id_column = ReadableFirstColumn(self.view)
        # Fixed widths for the short columns: measuring them would read every row.
        for column, width in ((1, 70), (2, 100), (3, 80)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)

        self.busy = QProgressBar()
        self.busy.setObjectName("treeBusy")
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(6)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.summary = QLabel("")
        self.summary.setObjectName("treeSummary")

        layout = QVBoxLayout(self)
        theme.pane_layout(layout, margins=True)
        layout.addWidget(QLabel("<b>Devices and modules</b>"))
        layout.addWidget(self.filter_edit)  # Refresh is the window's (toolbar, Hub menu, F5)
        layout.addWidget(self.query_edit)
        layout.addWidget(self.busy)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)

        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.reload)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self.query_edit.returnPressed.connect(self.reload)
        self.query_edit.textChanged.connect(self._query_cleared)
        self.model.loadingChanged.connect(self._loading)
        self.model.pageLoaded.connect(self._update_summary)
        self.model.pageLoaded.connect(self._log_first_rows)
        self.model.scanProgress.connect(self._scan_progress)
        self.model.errorOccurred.connect(self.errorOccurred.emit)
        self.view.selectionModel().currentChanged.connect(self._current_changed)

    # -- hub -----------------------------------------------------------------------------

    def set_service(self, service: HubService | None) -> None:
        self._service = service
        self.reload()

    def reload(self) -> None:
        """Start over with the current filter or query (keeps nothing stale)."""
        self._filter_timer.stop()
        if self._service is None:
            self.model.set_listing(None)
            self.summary.setText("No hub connected.")
            return
        query = self.query_edit.text().strip() or None
        listing = DeviceListing(self._service, id_filter=self.filter_edit.text(), query=query)
        self._filled = False
        self.model.set_listing(listing)
        self.selectionChanged.emit(None)

    def _query_cleared(self, text: str) -> None:
        if not text.strip():
            self.reload()

    # -- feedback ------------------------------------------------------------------------

    def _loading(self, loading: bool) -> None:
        self.busy.setVisible(loading)
        if loading and not self.model.rowCount():
            self.summary.setText("Loading…")
        if not loading:
            self._update_summary()

    def _log_first_rows(self, added: int) -> None:
        # packaging/measure_start.py times the app's start up to this line.
        if added and not self._filled:
            self._filled = True
            log.info("tree filled: %d rows", self.model.rowCount())

    def _scan_progress(self, scanned: int) -> None:
        self.summary.setText(f"Filtering in the app: {scanned:,} devices looked at…")

    def _update_summary(self, *_: object) -> None:
        listing = self.model.listing
        if listing is None:
            return
        shown = self.model.rowCount()
        noun = "row" if listing.user_query else "device"
        more = ", more as you scroll" if listing.has_more else ""
        plural = "" if shown == 1 else "s"
        self.summary.setText(f"{shown:,} {noun}{plural}{more}")

    # -- selection -----------------------------------------------------------------------

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.selectionChanged.emit(current.data(RowRole) if current.isValid() else None)

    def current_row(self) -> DeviceRow | ModuleRow | None:
        index = self.view.currentIndex()
        return index.data(RowRole) if index.isValid() else None

    def selected_rows(self) -> list[DeviceRow | ModuleRow]:
        rows = self.view.selectionModel().selectedRows(0)
        return [index.data(RowRole) for index in rows if index.data(RowRole) is not None]

    def focus_query(self) -> None:
        self.query_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.query_edit.selectAll()

    def focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()
