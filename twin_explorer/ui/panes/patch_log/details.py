"""One patch in full: who, when, the whole patch, and the twin diff it made."""

from __future__ import annotations

import html
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.history import TwinHistory, canonical
from twin_explorer.twin.events import PatchEvent
from twin_explorer.ui.panes.patch_log.diff_view import DiffView


class PatchDetailsDialog(QDialog):
    """Non-modal; the log reuses one and points it at whichever row is activated."""

    historyRequested = Signal(str)  # identity

    def __init__(self, history: TwinHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("patchDetails")
        self.setWindowTitle("Patch")
        self.resize(760, 620)
        self.history = history
        self.event: PatchEvent | None = None

        self.summary = QLabel()
        self.summary.setObjectName("patchSummary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.patch_text = QPlainTextEdit()
        self.patch_text.setObjectName("patchText")
        self.patch_text.setReadOnly(True)
        self.diff = DiffView()
        self.diff_note = QLabel()
        self.diff_note.setObjectName("diffNote")
        self.diff_note.setWordWrap(True)
        self.side_by_side = QCheckBox("Side by side")
        self.side_by_side.toggled.connect(self.diff.set_side_by_side)

        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(QLabel("<b>Twin diff</b>"))
        lower_layout.addWidget(self.diff_note)
        lower_layout.addWidget(self.diff, 1)
        lower_layout.addWidget(self.side_by_side)
        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addWidget(QLabel("<b>Patch</b>"))
        upper_layout.addWidget(self.patch_text, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setSizes([200, 400])

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.history_button = buttons.addButton(
            "Twin &History…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.history_button.clicked.connect(self._history)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)

    def show_event(self, event: PatchEvent) -> None:
        self.event = event
        version = "—" if event.version is None else str(event.version)
        source = f" · from {html.escape(event.source)}" if event.source else ""
        self.summary.setText(
            f"<b>{html.escape(event.identity)}</b> · {event.direction.value} · "
            f"{event.section.value} · $version {version}<br>{html.escape(event.time)}{source}"
        )
        self.patch_text.setPlainText(
            json.dumps(event.body, indent=2, sort_keys=True, ensure_ascii=False)
        )
        change = self.history.change_for(event)
        self.history_button.setEnabled(bool(self.history.versions(event.identity)))
        if change is None:
            self.diff_note.setText(
                "This twin was not watched when the patch happened, so the twin before it "
                "is unknown. Select or pin a twin to record its history."
            )
            self.diff.show_message("")
            return
        if change.before is None:
            self.diff_note.setText("The first version seen of this twin.")
        elif change.inferred:
            self.diff_note.setText(
                "The patch applied to the last version seen before it (no poll saw the result yet)."
            )
        else:
            self.diff_note.setText("Between the versions seen before and after the patch.")
        self.diff.show_texts(canonical(change.before), canonical(change.after))

    def _history(self) -> None:
        if self.event is not None:
            self.historyRequested.emit(self.event.identity)
