"""The preview and results of a bulk run as a table: one row per twin, filterable by
what happens to it and by text, for any number of twins (rows are indices into the
run's items; nothing is copied per row)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from twin_explorer.service.bulk.preview import Plan, PreviewItem
from twin_explorer.service.bulk.run import BulkRun, Outcome, Result
from twin_explorer.ui.common import theme

TWIN, STATUS, CHANGE, DETAIL = range(4)
HEADERS = ("Twin", "Status", "Change", "Detail")
ALL = ""  # the status filter that shows every row

# What a status looks like: (text colour role, background role).
STATUS_ROLES = {
    Plan.CHANGE.value: ("info", None),
    Plan.SKIPPED.value: ("muted", None),
    Plan.BLOCKED.value: ("warning", "warning_bg"),
    Outcome.APPLIED.value: ("ok", None),
    Outcome.CONFLICT.value: ("error", "error_bg"),
    Outcome.FAILED.value: ("error", "error_bg"),
}
STATUSES = (
    Plan.CHANGE.value,
    Plan.SKIPPED.value,
    Plan.BLOCKED.value,
    Outcome.APPLIED.value,
    Outcome.CONFLICT.value,
    Outcome.FAILED.value,
)

Index = QModelIndex | QPersistentModelIndex


def status_of(item: PreviewItem, result: Result | None) -> str:
    """The outcome once there is one, else what the preview plans."""
    return result.outcome.value if result is not None else item.plan.value


class PreviewTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.run: BulkRun | None = None
        self._rows: list[int] = []  # indices into run.items that pass the filter
        self._status = ALL
        self._text = ""

    # -- content ------------------------------------------------------------------------

    def set_run(self, run: BulkRun | None) -> None:
        self.beginResetModel()
        self.run = run
        self._rows = self._filtered()
        self.endResetModel()

    def set_filter(self, status: str = ALL, text: str = "") -> None:
        self.beginResetModel()
        self._status, self._text = status, text.strip().casefold()
        self._rows = self._filtered()
        self.endResetModel()

    def refresh(self) -> None:
        """Outcomes arrived: re-filter when a status filter is on, else repaint."""
        if self._status:
            self.set_filter(self._status, self._text)
        elif self._rows:
            self.dataChanged.emit(self.index(0, STATUS), self.index(len(self._rows) - 1, DETAIL))

    def item_at(self, row: int) -> PreviewItem | None:
        if self.run is None or not 0 <= row < len(self._rows):
            return None
        return self.run.items[self._rows[row]]

    def counts(self) -> dict[str, int]:
        """Rows per status, over the whole run (not only the filtered rows)."""
        counts = dict.fromkeys(STATUSES, 0)
        if self.run is not None:
            counts.update(self.run.status_counts())
        return counts

    def _filtered(self) -> list[int]:
        run = self.run
        if run is None:
            return []
        if not self._status and not self._text:
            return list(range(len(run.items)))
        results, wanted, text = run.results, self._status, self._text
        rows = []
        for n, item in enumerate(run.items):
            if wanted and status_of(item, results.get(item.key)) != wanted:
                continue
            if (
                text
                and text not in item.identity.casefold()
                and text not in (item.summary().casefold())
            ):
                continue
            rows.append(n)
        return rows

    # -- the model ----------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        item = self.item_at(index.row())
        if item is None or self.run is None:
            return None
        result = self.run.results.get(item.key)
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == TWIN:
                return item.identity
            if column == STATUS:
                return status_of(item, result)
            if column == CHANGE:
                return item.summary_text if item.plan is Plan.CHANGE else ""
            return result.detail if result is not None and result.detail else item.reason
        if column == STATUS and role in (
            Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole
        ):  # fmt: skip
            fore, back = STATUS_ROLES.get(status_of(item, result), (None, None))
            wanted = fore if role == Qt.ItemDataRole.ForegroundRole else back
            return theme.brush(wanted) if wanted else None
        return None
