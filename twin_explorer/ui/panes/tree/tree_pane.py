"""The left pane: ID filter, query box and the device -> module tree."""

from __future__ import annotations

import logging

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QKeySequence
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

from twin_explorer.service import errors
from twin_explorer.service.app_model import Selection
from twin_explorer.service.browse import DeviceListing, DeviceRow, ModuleRow, connection_states
from twin_explorer.service.hub import HubService
from twin_explorer.ui.chrome.pane_action import PaneAction, ToolbarEntry
from twin_explorer.ui.chrome.window_actions import QUERY
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.columns import ReadableFirstColumn
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.tree.device_tree_model import DeviceTreeModel, RowRole

log = logging.getLogger(__name__)

FILTER_DELAY_MS = 250  # wait for typing to pause before asking the hub
CONNECTION_POLL_MS = 5000  # how often the rows in sight re-read their connection state
SCROLL_SETTLE_MS = 400  # rows scrolled into sight are re-read once scrolling pauses
LOOKAHEAD_ROWS = 20  # the next page is asked for when the end is this close to sight
QUERY_EXAMPLE = "SELECT * FROM devices WHERE tags.site = 'seattle'"  # demo data matches it


class _Settle(QTimer):
    """A single-shot timer that any signal restarts, whatever it carries (connected to
    ``start`` an int argument would become the interval). Its own slot, so the connection
    ends with the timer instead of outliving it as a lambda would."""

    def __init__(self, interval_ms: int, parent: QWidget) -> None:
        super().__init__(parent)
        self.setSingleShot(True)
        self.setInterval(interval_ms)

    @Slot()
    def restart(self, *_: object) -> None:
        self.start()


class TreePane(QWidget):
    """Public API for the window and other panes (never reach into ``view``'s models):
    ``selectionChanged(row)`` when the current identity changes, ``selectedRowsChanged()``
    when the set of selected rows does, ``contextMenuRequested(global_pos)``;
    ``current_row()``, ``selected_rows()``, ``select(device_id, module_id)``.

    Built from the app model's ``Selection``: it sets it as the current row changes, answers
    its requests to choose an identity, and tells it which identities the app deleted."""

    selectionChanged = Signal(object)  # DeviceRow | ModuleRow | None
    selectedRowsChanged = Signal()
    contextMenuRequested = Signal(QPoint)  # where, on the screen
    errorOccurred = Signal(object)
    refreshed = Signal()  # the hub's current state was asked for (Refresh, an identity change)
    identitiesDeleted = Signal(object)  # [(device_id, module_id or None)] the app deleted

    def __init__(self, selection: Selection | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deviceTree")
        self.selection = selection if selection is not None else Selection()
        self._unsubscribe = self.selection.requests.subscribe(lambda ids: self.select(*ids))
        self._service: HubService | None = None
        self._filled = False  # the current listing has shown rows (logged once)
        self.page_size = 100  # devices per hub round trip

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("deviceFilter")
        self.filter_edit.setPlaceholderText("Filter by device ID…")
        self.filter_edit.setClearButtonEnabled(True)
        self.query_edit = QLineEdit()
        self.query_edit.setObjectName("deviceQuery")
        self.query_edit.setPlaceholderText(f"Query, e.g. {QUERY_EXAMPLE}")
        self.query_edit.setToolTip(
            "An IoT Hub query; Enter runs it, clearing it shows all devices again.\n"
            f"Example: {QUERY_EXAMPLE}"
        )
        self.query_edit.setClearButtonEnabled(True)
        self.query_error = QLabel("")
        self.query_error.setObjectName("queryError")
        self.query_error.setWordWrap(True)
        self.query_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.query_error.hide()

        self.model = DeviceTreeModel(self)
        self.view = QTreeView()
        self.view.setObjectName("deviceTreeView")
        # Before the view's selection model connects: it would move the current row to a
        # neighbour of a deleted one first (and the twin pane would open that one).
        self.model.rowsAboutToBeRemoved.connect(self._rows_leaving)
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
        layout.addWidget(self.query_error)
        layout.addWidget(self.busy)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)

        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._start_over)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self.query_edit.returnPressed.connect(self._start_over)
        self.query_edit.textChanged.connect(self._query_cleared)
        self.model.loadingChanged.connect(self._loading)
        self.model.pageLoaded.connect(self._update_summary)
        self.model.pageLoaded.connect(self._log_first_rows)
        self.model.scanProgress.connect(self._scan_progress)
        self.model.errorOccurred.connect(self._model_error)
        self.model.refreshed.connect(self._refreshed)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self._publish_view_signals()
        self._build_actions()

        # Connection states of the rows in sight: re-read now and then, never the hub.
        self._polls = Tasks(on_error=lambda exc: log.info("connection states: %s", exc))
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(CONNECTION_POLL_MS)
        self._poll_timer.timeout.connect(self.refresh_connections)
        self._scroll_timer = _Settle(SCROLL_SETTLE_MS, self)
        self._scroll_timer.timeout.connect(self.refresh_connections)
        self.view.verticalScrollBar().valueChanged.connect(self._scroll_timer.restart)
        self.view.expanded.connect(self._scroll_timer.restart)

        # Pages: asked for when the end of the rows is in sight, checked once the view has
        # settled after whatever moved it (a scroll, a resize, a page that landed).
        self._end_check = _Settle(0, self)
        self._end_check.timeout.connect(self._fetch_if_end_in_sight)
        bar = self.view.verticalScrollBar()
        bar.valueChanged.connect(self._end_check.restart)
        bar.rangeChanged.connect(self._end_check.restart)
        self.model.pageLoaded.connect(self._end_check.restart)

    # -- hub -----------------------------------------------------------------------------

    def set_service(self, service: HubService | None) -> None:
        self._service = service
        if service is None:
            self._poll_timer.stop()
        else:
            self._poll_timer.start()
        self._start_over()

    def reload(self) -> None:
        """Show the hub's current state (Refresh). With the same filter and query the rows
        are read again in place, so expansion, selection and scroll position stay; a
        changed filter or query starts over."""
        listing = self.model.listing
        if self._service is None or listing is None or not listing.same_view(self._listing()):
            self._start_over()
            return
        self._filter_timer.stop()
        self.refreshed.emit()
        self.model.refresh(self._expanded_devices())

    def identities_deleted(self, ids: list[tuple[str, str | None]]) -> None:
        """The app deleted these devices or modules: say so (the editor drops their twin)
        and show the hub without them."""
        self.selection.deleted.emit(ids)
        self.identitiesDeleted.emit(ids)
        self.reload()

    def _listing(self) -> DeviceListing:
        assert self._service is not None
        query = self.query_edit.text().strip() or None
        return DeviceListing(self._service, id_filter=self.filter_edit.text(), query=query)

    def _start_over(self) -> None:
        """A new listing with the current filter or query (keeps nothing stale)."""
        self._filter_timer.stop()
        self._show_query_error("")
        if self._service is None:
            self.model.set_listing(None)
            self.summary.setText("No hub connected.")
            return
        self._filled = False
        self.model.set_listing(self._listing())
        self._selected(None)

    def _refreshed(self) -> None:
        self._update_summary()
        self.refresh_connections()

    def _query_cleared(self, text: str) -> None:
        if not text.strip():
            self._start_over()

    def _expanded_devices(self) -> set[str]:
        return {
            device_id
            for device_id, index in self.model.devices_with_modules().items()
            if self.view.isExpanded(index)
        }

    def _rows_leaving(self, parent: QModelIndex, first: int, last: int) -> None:
        """The current row goes (deleted, or a new listing): nothing is current then, rather
        than Qt's neighbour, so the twin pane does not jump to another twin by itself."""
        current = self.view.currentIndex()
        while current.isValid():
            if current.parent() == parent and first <= current.row() <= last:
                self.view.selectionModel().setCurrentIndex(
                    QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate
                )
                return
            current = current.parent()

    def _fetch_if_end_in_sight(self) -> None:
        model = self.model
        if not self.view.isVisible() or not model.canFetchMore(QModelIndex()):
            return
        viewport = self.view.viewport()
        bottom = self.view.indexAt(QPoint(1, viewport.height() - 1))  # lays out first
        while bottom.parent().isValid():
            bottom = bottom.parent()
        if not bottom.isValid() or bottom.row() >= model.rowCount() - LOOKAHEAD_ROWS:
            model.fetch_next_page()

    # -- connection states ---------------------------------------------------------------

    def rows_in_sight(self) -> list[QModelIndex]:
        """The rows the view shows now (a screenful), top to bottom."""
        height = self.view.viewport().height()
        index = self.view.indexAt(QPoint(1, 1))
        rows: list[QModelIndex] = []
        while index.isValid() and self.view.visualRect(index).top() < height:
            if index.data(RowRole) is not None:
                rows.append(index)
            index = self.view.indexBelow(index)
        return rows

    @property
    def polling(self) -> bool:
        """Whether a connection-state read is on its way."""
        return self._polls.busy

    def refresh_connections_soon(self, *_: object) -> None:
        """Something changed a connection (the app's own simulated module): re-read the
        rows in sight now, not at the next poll (or once the read in flight is done)."""
        if self._polls.busy:
            self._scroll_timer.restart()
        else:
            self.refresh_connections()

    def refresh_connections(self) -> None:
        """Re-read the connection state of the rows in sight (one small query)."""
        service = self._service
        if service is None or self._polls.busy or not self.isVisible():
            return
        rows = self.rows_in_sight()
        devices = [
            index.data(RowRole).device_id
            for index in rows
            if isinstance(index.data(RowRole), DeviceRow) and not index.data(RowRole).is_module
        ]
        modules = [
            index.data(RowRole).device_id
            for index in rows
            if isinstance(index.data(RowRole), ModuleRow) or index.data(RowRole).is_module
        ]
        if rows:
            anchors = [QPersistentModelIndex(index) for index in rows]
            self._polls.spawn(self._poll(service, devices, modules, anchors))

    async def _poll(self, service, devices, modules, anchors) -> None:
        states = await connection_states(service, devices, modules)
        if service is self._service:
            live = [QModelIndex(anchor) for anchor in anchors if anchor.isValid()]
            self.model.show_connection_states(states, live)

    async def aclose(self) -> None:
        # Python objects only: the widgets may be gone by the time the window shuts down.
        self._unsubscribe()
        await self._polls.cancel_all()
        await self.model.aclose()

    # -- feedback ------------------------------------------------------------------------

    def _loading(self, loading: bool) -> None:
        self.busy.setVisible(loading)
        if loading and not self.model.rowCount():
            self.summary.setText("Loading…")
        if not loading:
            self._update_summary()

    def _model_error(self, exc: object) -> None:
        listing = self.model.listing
        if isinstance(exc, errors.InvalidRequest) and listing is not None and listing.user_query:
            # Said where it was typed; the window-wide bar would outlive the query.
            self._show_query_error(
                f"The hub did not run this query: {exc.detail or exc.message}"
                "\nCorrect it and press Enter, or clear it to see all devices."
            )
            return
        self.errorOccurred.emit(exc)

    def _show_query_error(self, text: str) -> None:
        self.query_error.setText(f"⚠ {text}" if text else "")
        self.query_error.setVisible(bool(text))
        theme.text_colour(self.query_error, "error" if text else None)

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
        if self.model.failure is not None and not shown:
            what = "the query did not run" if listing.user_query else "the hub did not answer"
            again = "" if listing.user_query else " Refresh tries again."
            self.summary.setText(f"No rows: {what}.{again}")
            return
        noun = "row" if listing.user_query else "device"
        more = ", more as you scroll" if listing.has_more else ""
        plural = "" if shown == 1 else "s"
        self.summary.setText(f"{shown:,} {noun}{plural}{more}")

    # -- selection -----------------------------------------------------------------------

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._selected(current.data(RowRole) if current.isValid() else None)

    def _selected(self, row: DeviceRow | ModuleRow | None) -> None:
        self.selection.set(row)
        self.selectionChanged.emit(row)

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

    # -- actions -------------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.filter_action = QAction("&Filter Devices", self)
        self.filter_action.setShortcut(QKeySequence.StandardKey.Find)
        self.filter_action.triggered.connect(self.focus_filter)
        self.query_action = QAction("&Query Devices", self)
        self.query_action.setObjectName("queryAction")
        self.query_action.setShortcut(QKeySequence("Ctrl+L"))
        self.query_action.setToolTip("Type an IoT Hub query for the device list")
        self.query_action.triggered.connect(self.focus_query)

    def pane_actions(self) -> list[PaneAction]:
        """Hub menu: Filter Devices, Query Devices; Query on the toolbar too (it takes
        the keyboard to the query box, wherever the focus was)."""
        return [
            PaneAction("Hub", self.filter_action),
            PaneAction("Hub", self.query_action, toolbar=ToolbarEntry(QUERY, "Query")),
        ]

    # -- public selection API ------------------------------------------------------------

    def _publish_view_signals(self) -> None:
        view = self.view
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(
            lambda pos: self.contextMenuRequested.emit(view.viewport().mapToGlobal(pos))
        )
        view.selectionModel().selectionChanged.connect(lambda *_: self.selectedRowsChanged.emit())

    def select(self, device_id: str, module_id: str | None = None) -> bool:
        """Make that identity's row current and the only one selected; False when it is
        not among the loaded rows (a module shows only under its expanded device)."""
        index = self._loaded_index(device_id, module_id or None)
        if not index.isValid():
            return False
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        flags |= QItemSelectionModel.SelectionFlag.Rows
        self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index)
        return True

    def _loaded_index(self, device_id: str, module_id: str | None) -> QModelIndex:
        model = self.model
        for r in range(model.rowCount()):
            top = model.index(r, 0)
            row = top.data(RowRole)
            if row is None or row.device_id != device_id:
                continue
            if (row.module_id or None) == module_id:
                return top  # a device, or a module listed on its own (query results)
            if module_id is None or row.module_id:
                continue
            for m in range(model.rowCount(top)):
                child = model.index(m, 0, top)
                if getattr(child.data(RowRole), "module_id", None) == module_id:
                    return child
        return QModelIndex()
