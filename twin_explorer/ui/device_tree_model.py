"""The device -> module tree as a Qt item model over a ``DeviceListing``.

Top-level rows are devices (pages arrive through ``canFetchMore``/``fetchMore``, so the
view asks for more only when it scrolls near the end); a device's modules are loaded the
first time it is expanded. Rows are only ever appended, which keeps indexes stable while
pages arrive. Internal ids: 0 for a top-level row, device row + 1 for a module row.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor

from twin_explorer.service.browse import DeviceListing, DeviceRow, ModuleRow
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


class DeviceTreeModel(QAbstractItemModel):
    RowRole = RowRole
    loadingChanged = Signal(bool)
    errorOccurred = Signal(object)  # a ServiceError
    pageLoaded = Signal(int)  # rows added
    scanProgress = Signal(int)  # devices scanned by a client-side filter

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._listing: DeviceListing | None = None
        self._generation = 0
        self._page_loading = False
        self._tasks = Tasks(on_error=self.errorOccurred.emit)

    # -- listing -------------------------------------------------------------------------

    @property
    def listing(self) -> DeviceListing | None:
        return self._listing

    def set_listing(self, listing: DeviceListing | None) -> None:
        """Show a new listing (hub, filter or query); starts loading its first page."""
        self.beginResetModel()
        self._listing = listing
        self._generation += 1
        self._set_loading(False)
        self.endResetModel()
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

    # -- structure -----------------------------------------------------------------------

    def _rows(self) -> list[DeviceRow]:
        return self._listing.rows if self._listing is not None else []

    def row_at(self, index: Index) -> DeviceRow | ModuleRow | None:
        if not index.isValid():
            return None
        parent_id = index.internalId()
        rows = self._rows()
        if parent_id == 0:
            return rows[index.row()] if index.row() < len(rows) else None
        device = rows[parent_id - 1]
        modules = device.modules or []
        return modules[index.row()] if index.row() < len(modules) else None

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        return self.createIndex(row, column, parent.row() + 1)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._rows())
        if parent.column() != 0 or parent.internalId() != 0:
            return 0
        device = self._rows()[parent.row()]
        return len(device.modules or [])

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:
        if not parent.isValid():
            return bool(self._rows()) or self.canFetchMore(parent)
        if parent.internalId() != 0 or parent.column() != 0:
            return False
        device = self._rows()[parent.row()]
        return not device.is_module and (device.modules is None or bool(device.modules))

    # -- lazy loading --------------------------------------------------------------------

    def canFetchMore(self, parent: Index) -> bool:
        if self._listing is None:
            return False
        if not parent.isValid():
            return self._listing.has_more and not self._page_loading
        if parent.internalId() != 0:
            return False
        device = self._rows()[parent.row()]
        return not device.is_module and device.modules is None and not device.modules_loading

    def fetchMore(self, parent: Index) -> None:
        if not self.canFetchMore(parent):
            return
        if not parent.isValid():
            self._set_loading(True)
            self._tasks.spawn(self._fetch_page(self._generation), on_error=self._page_failed)
        else:
            device = self._rows()[parent.row()]
            device.modules_loading = True
            self._tasks.spawn(self._fetch_modules(self._generation, parent.row(), device))

    async def _fetch_page(self, generation: int) -> None:
        listing = self._listing
        assert listing is not None
        rows = await listing.fetch_page(progress=self.scanProgress.emit)
        if generation != self._generation:
            return  # a newer listing replaced this one while the page was on its way
        if rows:
            first = len(listing.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            listing.rows.extend(rows)
            self.endInsertRows()
        self._set_loading(False)
        self.pageLoaded.emit(len(rows))

    def _page_failed(self, exc: BaseException) -> None:
        self._set_loading(False)
        self.errorOccurred.emit(exc)

    async def _fetch_modules(self, generation: int, row: int, device: DeviceRow) -> None:
        listing = self._listing
        assert listing is not None
        try:
            modules = await listing.fetch_modules(device)
        finally:
            device.modules_loading = False
        if generation != self._generation:
            return
        parent = self.index(row, 0)
        if modules:
            self.beginInsertRows(parent, 0, len(modules) - 1)
            device.modules = modules
            self.endInsertRows()
        else:
            device.modules = []
            self.dataChanged.emit(parent, parent)

    # -- data ----------------------------------------------------------------------------

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index)
        if row is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == RowRole:
            return row
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and isinstance(row, DeviceRow)
            and row.status == "disabled"
        ):
            return QBrush(QColor(128, 128, 128))
        return None

    @staticmethod
    def _display(row: DeviceRow | ModuleRow, column: int) -> str:
        if column == 0:
            if isinstance(row, ModuleRow):
                return row.module_id
            return row.label
        if column == 1:
            if isinstance(row, DeviceRow) and not row.is_module:
                return row.status
            return ""
        if column == 2:
            return row.connection_state
        if column == 3:
            return _AUTH_LABELS.get(row.auth_type, row.auth_type)
        return ""

    @staticmethod
    def _tooltip(row: DeviceRow | ModuleRow) -> str:
        auth = _AUTH_LABELS.get(row.auth_type, row.auth_type)
        if isinstance(row, ModuleRow) or row.is_module:
            return f"Module {row.label}\n{row.connection_state}, {auth}"
        edge = " (IoT Edge)" if row.iot_edge else ""
        return f"Device {row.device_id}{edge}\n{row.status}, {row.connection_state}, {auth}"
