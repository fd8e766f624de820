"""The 412 view: their change and yours side by side, overlaps to settle, and the way on.

Merge puts their twin plus your change in the editor (nothing is sent until you save);
Overwrite sends your change with their etag; Reload takes their twin and keeps your
text recoverable. Your text, exactly as typed, is always one tab away.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.edit_conflict import Choice, Conflict, Operation
from twin_explorer.service.edit_diff import diff_documents
from twin_explorer.service.edit_text import editable_part, pretty
from twin_explorer.ui.common import theme
from twin_explorer.ui.panes.twin_editor.code_view import CodeView
from twin_explorer.ui.panes.twin_editor.diff_view import SideBySideView

_CHOICES = (("Choose…", None), ("Keep mine", Choice.MINE), ("Keep theirs", Choice.THEIRS))


class ConflictView(QWidget):
    mergeRequested = Signal(object)  # {path: Choice}
    overwriteRequested = Signal()
    reloadRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conflictView")
        self.conflict: Conflict | None = None
        self.headline = QLabel("")
        self.headline.setObjectName("conflictHeadline")
        self.headline.setWordWrap(True)
        theme.style(
            self.headline, "QLabel { background: $warning_bg; color: $text; padding: 6px; }"
        )

        # Their change | your change, as the patches each side made from where you began.
        self.theirs_view = CodeView(read_only=True)
        self.theirs_view.setObjectName("conflictTheirs")
        self.mine_view = CodeView(read_only=True)
        self.mine_view.setObjectName("conflictMine")
        changes = QWidget()
        sides = QHBoxLayout(changes)
        sides.setContentsMargins(0, 0, 0, 0)
        for title, view in (
            ("Their change (made on the hub after you opened the twin)", self.theirs_view),
            ("Your change", self.mine_view),
        ):
            column = QVBoxLayout()
            heading = QLabel(f"<b>{title}</b>")
            heading.setWordWrap(True)
            column.addWidget(heading)
            column.addWidget(view, 1)
            sides.addLayout(column, 1)

        self.overlaps = QTableWidget(0, 4)
        self.overlaps.setObjectName("conflictOverlaps")
        self.overlaps.setHorizontalHeaderLabels(("Both changed", "Theirs", "Yours", "Keep"))
        self.overlaps.verticalHeader().hide()
        self.overlaps.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.overlaps.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.overlaps.horizontalHeader().setStretchLastSection(True)
        self.overlap_note = QLabel("")
        self.overlap_note.setWordWrap(True)
        self._combos: list[QComboBox] = []

        self.documents = SideBySideView("The hub now", "Your text")
        self.my_text = CodeView(read_only=True)
        self.my_text.setObjectName("conflictMyText")

        self.tabs = QTabWidget()
        self.tabs.addTab(changes, "Changes")
        self.tabs.addTab(self.documents, "Whole documents")
        self.tabs.addTab(self.my_text, "Your text as typed")

        self.merge_button = QPushButton("Merge")
        self.merge_button.setObjectName("conflictMerge")
        self.merge_button.setToolTip(
            "Their twin with your change on top, in the editor for you to review and save"
        )
        self.overwrite_button = QPushButton("Overwrite with mine")
        self.overwrite_button.setObjectName("conflictOverwrite")
        self.reload_button = QPushButton("Reload theirs")
        self.reload_button.setObjectName("conflictReload")
        self.reload_button.setToolTip(
            "Load the hub's twin; Twin ▸ Restore My Edit brings your text back"
        )
        copy = QPushButton("Copy my text")
        copy.clicked.connect(self.copy_my_text)
        self.merge_button.clicked.connect(self._merge)
        self.overwrite_button.clicked.connect(self.overwriteRequested.emit)
        self.reload_button.clicked.connect(self.reloadRequested.emit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.merge_button)
        buttons.addWidget(self.overwrite_button)
        buttons.addWidget(self.reload_button)
        buttons.addStretch(1)
        buttons.addWidget(copy)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.headline)
        layout.addWidget(self.tabs, 3)
        layout.addWidget(self.overlap_note)
        layout.addWidget(self.overlaps, 1)
        layout.addLayout(buttons)

    def show_conflict(self, conflict: Conflict) -> None:
        self.conflict = conflict
        action = "replace" if conflict.operation is Operation.REPLACE else "save"
        self.headline.setText(
            f"<b>Someone else changed this twin after you opened it</b>, so your {action} was "
            f"not sent (you started from etag {conflict.my_etag}; the hub now has "
            f"{conflict.their_etag}). Nothing of yours is lost: your text is kept here."
        )
        theirs = pretty(conflict.their_patch) if conflict.their_patch else "{}"
        self.theirs_view.replace_text(theirs)
        self.mine_view.replace_text(pretty(conflict.my_patch))
        self.documents.show_rows(diff_documents(editable_part(conflict.theirs), conflict.mine))
        self.my_text.replace_text(conflict.my_text)
        self._fill_overlaps(conflict)

    def _fill_overlaps(self, conflict: Conflict) -> None:
        self._combos = []
        self.overlaps.setRowCount(len(conflict.overlaps))
        for row, overlap in enumerate(conflict.overlaps):
            cells = (overlap.label, overlap.shown(Choice.THEIRS), overlap.shown(Choice.MINE))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text.replace("\n", " "))
                item.setToolTip(text)
                self.overlaps.setItem(row, column, item)
            combo = QComboBox()
            for label, choice in _CHOICES:
                combo.addItem(label, choice)
            combo.currentIndexChanged.connect(self._update_merge)
            self.overlaps.setCellWidget(row, 3, combo)
            self._combos.append(combo)
        count = len(conflict.overlaps)
        self.overlaps.setVisible(bool(count))
        if count:
            self.overlap_note.setText(
                f"You both changed {count} place{'s' * (count != 1)}: choose whose value to "
                "keep for each, then Merge. Everything else merges by itself."
            )
        else:
            self.overlap_note.setText(
                "Your changes and theirs touch different keys: Merge keeps both."
            )
        self._update_merge()

    def choices(self) -> dict[tuple[str, ...], Choice]:
        if self.conflict is None:
            return {}
        # Qt hands the item data back as a plain str; make it a Choice again.
        return {
            overlap.path: Choice(combo.currentData())
            for overlap, combo in zip(self.conflict.overlaps, self._combos, strict=True)
            if combo.currentData() is not None
        }

    def choose_all(self, choice: Choice) -> None:
        for combo in self._combos:
            combo.setCurrentIndex(combo.findData(choice))

    def _update_merge(self, *_: object) -> None:
        ready = self.conflict is not None and len(self.choices()) == len(self.conflict.overlaps)
        self.merge_button.setEnabled(ready)

    def _merge(self) -> None:
        self.mergeRequested.emit(self.choices())

    def copy_my_text(self) -> None:
        if self.conflict is not None:
            QApplication.clipboard().setText(self.conflict.my_text)
