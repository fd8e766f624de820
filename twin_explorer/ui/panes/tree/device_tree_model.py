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

import asyncio
from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel

from twin_explorer.service.browse import DeviceListing, DeviceRow, ModuleRow
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks

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


def _texts(row: DeviceRow | ModuleRow) -> tuple[str, str, str, str]:
    if isinstance(row, ModuleRow):
        return (row.module_id, "", row.connection_state, _auth(row))
    return (row.label, "" if row.is_module else row.status, row.connection_state, _auth(row))


def _greyed(row: DeviceRow | ModuleRow) -> bool:
    return isinstance(row, DeviceRow) and row.status == "disabled"


def _cells(row: DeviceRow | ModuleRow) -> list[QStandardItem]:
    # Items stay editable as far as the model goes; the view allows no edit triggers.
    cells = [QStandardItem(text) for text in _texts(row)]
    cells[0].setToolTip(_tooltip(row))
    cells[0].setData(row, RowRole)
    if _greyed(row):
        for cell in cells:
            cell.setForeground(theme.brush("muted"))
    return cells


def _shown_as(row: DeviceRow | ModuleRow) -> tuple:
    """What the cells show of a row (texts, tooltip, grey): equal means nothing to redraw."""
    edge = getattr(row, "iot_edge", False)
    status = getattr(row, "status", "")
    return (type(row), row.label, status, row.connection_state, row.auth_type, edge)


def _update_cells(parent: QStandardItem, position: int, row: DeviceRow | ModuleRow) -> None:
    """Show ``row`` in the existing items at ``position``, touching only what changed (the
    items stay, and with them expansion, selection and the view's place)."""
    for column, text in enumerate(_texts(row)):
        cell = parent.child(position, column)
        if cell.text() != text:
            cell.setText(text)
        grey = _greyed(row)
        if (cell.data(Qt.ItemDataRole.ForegroundRole) is not None) != grey:
            cell.setData(theme.brush("muted") if grey else None, Qt.ItemDataRole.ForegroundRole)
    first = parent.child(position, 0)
    tooltip = _tooltip(row)
    if first.toolTip() != tooltip:
        first.setToolTip(tooltip)
    first.setData(row, RowRole)


def _key(row: DeviceRow | ModuleRow) -> tuple[str, str | None]:
    return (row.device_id, row.module_id or None)


def _ranges(positions: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending positions as (first, count) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for position in positions:
        if runs and runs[-1][0] + runs[-1][1] == position:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((position, 1))
    return runs


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
    refreshed = Signal()  # rows were re-read in place

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self._listing: DeviceListing | None = None
        self._generation = 0  # which listing: modules loaded for another are dropped
        self._page_token = 0  # which page request (or refresh) may still land
        self._page_loading = False
        self._failure: BaseException | None = None  # the listing's last page failed
        self._modules_loading: set[str] = set()
        # Devices whose module rows are loaded: a refresh reads those again.
        self._with_modules: dict[str, QPersistentModelIndex] = {}
        self._tasks = Tasks(on_error=self.errorOccurred.emit)
        theme.on_change(self, self._recolour)

    def _recolour(self) -> None:
        """Disabled devices' grey, in the new colour scheme."""
        for row in range(self.rowCount()):
            first = self.item(row, 0)
            if first is not None and _greyed(first.data(RowRole)):
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
        self._page_token += 1
        self._listing = listing
        self._failure = None
        self._modules_loading.clear()
        self._with_modules.clear()
        self._set_loading(False)
        self.removeRows(0, self.rowCount())
        if listing is not None:
            self.fetch_next_page()

    @property
    def loading(self) -> bool:
        return self._page_loading

    @property
    def failure(self) -> BaseException | None:
        """Why the listing stopped: its last page failed (until the next listing)."""
        return self._failure

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

    def devices_with_modules(self) -> dict[str, QModelIndex]:
        """The devices whose module rows are loaded, by id (a few: the ones expanded)."""
        return {
            device_id: QModelIndex(anchor)
            for device_id, anchor in self._with_modules.items()
            if anchor.isValid()
        }

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
            # A failed page is not asked for again by itself: views call fetchMore after
            # every layout, which would repeat a refused query forever.
            return self._listing.has_more and not self._page_loading and self._failure is None
        return self._device_needing_modules(parent) is not None

    def fetchMore(self, parent: Index) -> None:
        """Modules on expand. The next page of devices comes from ``fetch_next_page``
        only: QTreeView asks the root for more after every layout, and each page lands
        with a layout, so honouring it would read the whole hub in a chain, page after
        page, with nobody scrolling (and a person's scroll would race that chain)."""
        if not parent.isValid() or not self.canFetchMore(parent):
            return
        device = self._device_needing_modules(parent)
        assert device is not None
        self._modules_loading.add(device.device_id)
        anchor = QPersistentModelIndex(parent.siblingAtColumn(0))
        self._tasks.spawn(self._fetch_modules(self._generation, anchor, device))

    def fetch_next_page(self) -> bool:
        """Ask the hub for the next page of devices (the pane does, when the end of the
        rows comes into sight); False when there is none to ask for now."""
        if not self.canFetchMore(QModelIndex()):
            return False
        self._set_loading(True)
        self._page_token += 1
        self._tasks.spawn(self._fetch_page(self._page_token))
        return True

    async def _fetch_page(self, token: int) -> None:
        listing = self._listing
        assert listing is not None
        try:
            rows = await listing.fetch_more(progress=self.scanProgress.emit)
        except Exception as exc:
            if token == self._page_token:
                self._failed(exc)
            return
        if token != self._page_token:
            return  # a newer listing or refresh replaced this one while on its way
        self._append(self.invisibleRootItem(), rows)
        self._set_loading(False)
        self.pageLoaded.emit(len(rows))

    def _append(self, parent: QStandardItem, rows: list[DeviceRow]) -> None:
        """One insert for the rows (one rowsInserted, one relayout), then fill the cells."""
        if not rows:
            return
        first = parent.rowCount()
        parent.setRowCount(first + len(rows))
        self._fill(parent, first, rows)

    def _fill(self, parent: QStandardItem, first: int, rows: list) -> None:
        for offset, row in enumerate(rows):
            cells = _cells(row)
            if isinstance(row, DeviceRow) and not row.is_module:
                cells[0].appendRow(_placeholder())  # not in the model yet: no signal
            for column, cell in enumerate(cells):
                parent.setChild(first + offset, column, cell)

    def _failed(self, exc: BaseException) -> None:
        self._failure = exc
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
        row = item.data(RowRole)  # a refresh may have put a newer row object here
        row.modules = modules
        item.removeRows(0, item.rowCount())  # the placeholder
        self._with_modules[row.device_id] = anchor
        for module in modules:
            item.appendRow(_cells(module))

    # -- refresh in place ----------------------------------------------------------------

    def refresh(self, expanded: set[str]) -> None:
        """Read the rows shown again and update them in place: changed cells change, rows
        gone go, new rows appear where they belong; everything else stays as it is (and
        with it the view's expansion, selection and scroll position). ``expanded``: the
        devices whose modules are shown, which are read again too."""
        listing = self._listing
        if listing is None:
            return
        if self._failure is not None or not self.rowCount():
            self.set_listing(listing.again())
            return
        self._set_loading(True)
        self._page_token += 1
        self._tasks.spawn(
            self._refresh(self._page_token, listing.again(), self.rowCount(), expanded)
        )

    async def _refresh(
        self, token: int, listing: DeviceListing, shown: int, expanded: set[str]
    ) -> None:
        try:
            while len(listing.rows) < shown and listing.has_more:
                await listing.fetch_more(at_least=shown - len(listing.rows))
            wanted = [
                row for row in listing.rows if not row.is_module and row.device_id in expanded
            ]
            modules = await asyncio.gather(*(listing.fetch_modules(row) for row in wanted))
        except Exception as exc:
            if token == self._page_token:
                self._set_loading(False)
                self.errorOccurred.emit(exc)  # the rows shown stay; the next page still loads
            return
        if token != self._page_token:
            return
        for row, found in zip(wanted, modules, strict=True):
            row.modules = found
        self._listing = listing
        self._apply(self.invisibleRootItem(), listing.rows)
        self._set_loading(False)
        self.refreshed.emit()

    def _apply(self, parent: QStandardItem, rows: list) -> None:
        """Make ``parent``'s children show ``rows``, keeping the items of rows that stay:
        rows gone are removed and new rows inserted where they belong, in ranges (one
        signal per range). O(rows), and for rows unchanged no Qt call at all beyond
        reading what is shown; the hub keeps its order between reads."""
        old = [parent.child(r, 0).data(RowRole) for r in range(parent.rowCount())]
        old_keys = [(row.device_id, row.module_id or None) for row in old]
        new_keys = [(row.device_id, row.module_id or None) for row in rows]
        wanted = set(new_keys)
        gone = (i for i, key in enumerate(old_keys) if key not in wanted)
        for first, count in reversed(_ranges(gone)):
            parent.removeRows(first, count)
        kept = [(row, key) for row, key in zip(old, old_keys, strict=True) if key in wanted]
        kept_set = {key for _row, key in kept}
        if [key for _row, key in kept] != [key for key in new_keys if key in kept_set]:
            # Reordered (not the hub's way): show the new rows as they are.
            parent.removeRows(0, parent.rowCount())
            self._append(parent, rows)
            return
        pending: list = []
        next_kept = 0
        for position, (row, key) in enumerate(zip(rows, new_keys, strict=True)):
            if next_kept < len(kept) and key == kept[next_kept][1]:
                if pending:
                    self._insert(parent, position - len(pending), pending)
                    pending = []
                self._keep(parent, position, kept[next_kept][0], row)
                next_kept += 1
            else:
                pending.append(row)
        if pending:
            self._insert(parent, len(rows) - len(pending), pending)

    def _insert(self, parent: QStandardItem, first: int, rows: list) -> None:
        parent.insertRows(first, len(rows))
        self._fill(parent, first, rows)

    def _keep(self, parent: QStandardItem, position: int, old, new) -> None:
        loaded = isinstance(new, DeviceRow) and (new.modules, old.modules) != (None, None)
        if loaded and not new.is_module:
            item = parent.child(position, 0)
            if new.modules is not None:  # read again: it is expanded
                if old.modules is None:  # still the placeholder
                    item.removeRows(0, item.rowCount())
                    self._append(item, new.modules)
                else:
                    self._apply(item, new.modules)
                self._with_modules[new.device_id] = QPersistentModelIndex(item.index())
            elif old.modules is not None:
                # Loaded once, folded now: read again when next expanded.
                self._with_modules.pop(new.device_id, None)
                item.removeRows(0, item.rowCount())
                item.appendRow(_placeholder())
        if _shown_as(old) == _shown_as(new):
            # Most rows of a refresh: no Qt call, the row object just takes the news.
            old.__dict__.update(new.__dict__)
            return
        _update_cells(parent, position, new)

    # -- connection states ---------------------------------------------------------------

    def show_connection_states(
        self, states: dict[tuple[str, str | None], str], indexes: list[QModelIndex]
    ) -> int:
        """Put fresh connectionStates in the rows at ``indexes`` (the rows in sight);
        returns how many changed."""
        changed = 0
        for index in indexes:
            item = self.itemFromIndex(index.siblingAtColumn(0))
            row = item.data(RowRole) if item is not None else None
            if row is None:
                continue
            state = states.get(_key(row))
            if state is None or state == row.connection_state:
                continue
            row.connection_state = state
            _update_cells(item.parent() or self.invisibleRootItem(), item.row(), row)
            changed += 1
        return changed
