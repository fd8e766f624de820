"""The device -> module tree as a Qt item model over a ``DeviceListing``.

Rows live in a ``QStandardItemModel``, i.e. in C++: a tree view re-lays out every row
when rows arrive, and with 10,000 rows a Python ``index()``/``hasChildren()`` per row
would stall the event loop for tens of milliseconds per page. Only ``canFetchMore`` and
``fetchMore`` are Python, and views call those when scrolled to the end or on expand.

Top-level rows are devices (pages arrive through ``fetchMore`` on the root); a device's
modules are loaded the first time it is expanded. Until then it has one placeholder
child, so the view shows an expand arrow without asking Python.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel

from twin_explorer.service.browse import DeviceListing, DeviceRow, ModuleRow
from twin_explorer.ui import theme
from twin_explorer.ui.tasks import Tasks

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("ID", "Status", "Connection", "Auth")
RowRole = Qt.ItemDataRole.UserRole + 1

_AUTH_LABELS = {
    "sas": "SAS key",
    "selfSigned": "X.509 self-signed",
    "certificateAuthority": "X.509 CA",
    "none": "none",
}


def _auth(row: DeviceRow | ModuleRow) -> str:
    return _AUTH_LABELS.get(row.auth_type, row.auth_type)


def _tooltip(row: DeviceRow | ModuleRow) -> str:
    if isinstance(row, ModuleRow) or row.is_module:
        return f"Module {row.label}\n{row.connection_state}, {_auth(row)}"
    edge = " (IoT Edge)" if row.iot_edge else ""
    return f"Device {row.device_id}{edge}\n{row.status}, {row.connection_state}, {_auth(row)}"


def _cells(row: DeviceRow | ModuleRow) -> list[QStandardItem]:
    if isinstance(row, ModuleRow):
        texts = (row.module_id, "", row.connection_state, _auth(row))
    else:
        texts = (row.label, "" if row.is_module else row.status, row.connection_state, _auth(row))
    # Items stay editable as far as the model goes; the view allows no edit triggers.
    cells = [QStandardItem(text) for text in texts]
    cells[0].setToolTip(_tooltip(row))
    cells[0].setData(row, RowRole)
    if _muted(row):
        for cell in cells:
            cell.setForeground(theme.brush("muted"))
    return cells


def _muted(row: object) -> bool:
    return isinstance(row, DeviceRow) and row.status == "disabled"


def _placeholder() -> list[QStandardItem]:
    cell = QStandardItem("Loading modules…")
    cell.setFlags(Qt.ItemFlag.ItemIsEnabled)
    return [cell]


class DeviceTreeModel(QStandardItemModel):
    RowRole = RowRole

    loadingChanged = Signal(bool)
    errorOccurred = Signal(object)  # a ServiceError
    pageLoaded = Signal(int)  # rows added
    scanProgress = Signal(int)  # devices scanned by a client-side filter

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self._listing: DeviceListing | None = None
        self._generation = 0
        self._page_loading = False
        self._modules_loading: set[str] = set()
        self._tasks = Tasks(on_error=self.errorOccurred.emit)
        theme.on_change(self, self._recolour)

    def _recolour(self) -> None:
        """Disabled devices' grey, in the new colour scheme."""
        for row in range(self.rowCount()):
            first = self.item(row, 0)
            if first is not None and _muted(first.data(RowRole)):
                for column in range(self.columnCount()):
                    cell = self.item(row, column)
                    if cell is not None:
                        cell.setForeground(theme.brush("muted"))

    # -- listing -------------------------------------------------------------------------

    @property
    def listing(self) -> DeviceListing | None:
        return self._listing

    def set_listing(self, listing: DeviceListing | None) -> None:
        """Show a new listing (hub, filter or query); starts loading its first page."""
        self._generation += 1
        self._listing = listing
        self._modules_loading.clear()
        self._set_loading(False)
        self.removeRows(0, self.rowCount())
        if listing is not None:
            self.fetchMore(QModelIndex())

    @property
    def loading(self) -> bool:
        return self._page_loading

    def _set_loading(self, loading: bool) -> None:
        if loading != self._page_loading:
            self._page_loading = loading
            self.loadingChanged.emit(loading)

    async def aclose(self) -> None:
        await self._tasks.cancel_all()

    def row_at(self, index: Index) -> DeviceRow | ModuleRow | None:
        if not index.isValid():
            return None
        return index.siblingAtColumn(0).data(RowRole)

    # -- lazy loading --------------------------------------------------------------------

    def _device_needing_modules(self, parent: Index) -> DeviceRow | None:
        if not parent.isValid() or parent.parent().isValid():
            return None
        first = parent.siblingAtColumn(0)
        row = first.data(RowRole)
        if not isinstance(row, DeviceRow) or row.is_module or row.modules is not None:
            return None
        return None if row.device_id in self._modules_loading else row

    def canFetchMore(self, parent: Index) -> bool:
        if self._listing is None:
            return False
        if not parent.isValid():
            return self._listing.has_more and not self._page_loading
        return self._device_needing_modules(parent) is not None

    def fetchMore(self, parent: Index) -> None:
        if not self.canFetchMore(parent):
            return
        if not parent.isValid():
            self._set_loading(True)
            self._tasks.spawn(self._fetch_page(self._generation), on_error=self._page_failed)
            return
        device = self._device_needing_modules(parent)
        assert device is not None
        self._modules_loading.add(device.device_id)
        anchor = QPersistentModelIndex(parent.siblingAtColumn(0))
        self._tasks.spawn(self._fetch_modules(self._generation, anchor, device))

    async def _fetch_page(self, generation: int) -> None:
        listing = self._listing
        assert listing is not None
        rows = await listing.fetch_more(progress=self.scanProgress.emit)
        if generation != self._generation:
            return  # a newer listing replaced this one while the page was on its way
        # One insert for the page (one rowsInserted, one relayout), then fill the cells.
        root = self.invisibleRootItem()
        first = root.rowCount()
        root.setRowCount(first + len(rows))
        for offset, row in enumerate(rows):
            cells = _cells(row)
            if not row.is_module:
                cells[0].appendRow(_placeholder())  # not in the model yet: no signal
            for column, cell in enumerate(cells):
                root.setChild(first + offset, column, cell)
        self._set_loading(False)
        self.pageLoaded.emit(len(rows))

    def _page_failed(self, exc: BaseException) -> None:
        self._set_loading(False)
        self.errorOccurred.emit(exc)

    async def _fetch_modules(
        self, generation: int, anchor: QPersistentModelIndex, device: DeviceRow
    ) -> None:
        listing = self._listing
        assert listing is not None
        try:
            modules = await listing.fetch_modules(device)
        finally:
            if generation == self._generation:
                self._modules_loading.discard(device.device_id)
        if generation != self._generation or not anchor.isValid():
            return
        item = self.itemFromIndex(QModelIndex(anchor))
        device.modules = modules
        item.removeRows(0, item.rowCount())  # the placeholder
        for module in modules:
            item.appendRow(_cells(module))
