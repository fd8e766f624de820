"""Twin history: pick any two observed versions of a watched twin and see the diff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.history import TwinHistory, TwinVersion, canonical
from twin_explorer.twin.events import PatchEvent
from twin_explorer.ui.panes.patch_log.diff_view import DiffView
from twin_explorer.ui.panes.patch_log.restore_dialog import RestoreDialog


class TwinHistoryDialog(QDialog):
    def __init__(
        self,
        history: TwinHistory,
        identity: str | None = None,
        parent: QWidget | None = None,
        *,
        service: Callable[[], Any] | None = None,
        publish: Callable[[PatchEvent], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._service, self._publish = service or (lambda: None), publish
        self.setObjectName("twinHistory")
        self.setWindowTitle("Twin History")
        self.resize(900, 640)
        self.history = history

        self.identity_box = QComboBox()
        self.identity_box.setObjectName("historyIdentity")
        self.from_box = QComboBox()
        self.from_box.setObjectName("historyFrom")
        self.to_box = QComboBox()
        self.to_box.setObjectName("historyTo")
        self.side_by_side = QCheckBox("Side by side")
        self.side_by_side.setObjectName("historySideBySide")
        self.metadata = QCheckBox("Show $metadata")
        self.metadata.setObjectName("historyMetadata")
        self.count = QLabel()
        self.count.setObjectName("historyCount")
        self.diff = DiffView()
        self.restore_button = QPushButton("Restore This Version…")
        self.restore_button.setObjectName("historyRestore")
        self.restore_button.setToolTip(
            "Bring the twin's tags and desired properties back to the From version: shows "
            "the patch first, then sends it with the twin's current etag"
        )
        self.restore_button.clicked.connect(self.restore_from_version)

        pickers = QFormLayout()
        pickers.addRow("Twin", self.identity_box)
        from_row = QHBoxLayout()
        from_row.addWidget(self.from_box, 1)
        from_row.addWidget(self.restore_button)
        pickers.addRow("From", from_row)
        pickers.addRow("To", self.to_box)
        options = QHBoxLayout()
        options.addWidget(self.side_by_side)
        options.addWidget(self.metadata)
        options.addStretch(1)
        options.addWidget(self.count)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(pickers)
        layout.addLayout(options)
        layout.addWidget(self.diff, 1)
        layout.addWidget(buttons)

        self.identity_box.currentTextChanged.connect(self._identity_changed)
        self.from_box.currentIndexChanged.connect(self._render)
        self.to_box.currentIndexChanged.connect(self._render)
        self.side_by_side.toggled.connect(self.diff.set_side_by_side)
        self.metadata.toggled.connect(self._render)
        self._unsubscribe = history.subscribe(self._recorded)
        self.finished.connect(lambda _result: self._unsubscribe())

        self._fill_identities(identity)

    # -- choosing ----------------------------------------------------------------------

    def set_identity(self, identity: str) -> None:
        if self.identity_box.findText(identity) < 0:
            self._fill_identities(identity)
        self.identity_box.setCurrentText(identity)

    def select_versions(self, from_seq: int, to_seq: int) -> None:
        self.from_box.setCurrentIndex(self.from_box.findData(from_seq))
        self.to_box.setCurrentIndex(self.to_box.findData(to_seq))

    @property
    def identity(self) -> str:
        return self.identity_box.currentText()

    def _fill_identities(self, wanted: str | None) -> None:
        names = self.history.identities()
        if wanted and wanted not in names:
            names.append(wanted)
        current = wanted or self.identity_box.currentText()
        self.identity_box.blockSignals(True)
        self.identity_box.clear()
        self.identity_box.addItems(names)
        if current in names:
            self.identity_box.setCurrentText(current)
        self.identity_box.blockSignals(False)
        self._identity_changed(self.identity_box.currentText())

    def _identity_changed(self, _identity: str) -> None:
        self._fill_versions(keep=False)

    def _fill_versions(self, *, keep: bool) -> None:
        versions = self.history.versions(self.identity)
        old_from, old_to = self.from_box.currentData(), self.to_box.currentData()
        follow_newest = self.to_box.currentIndex() == self.to_box.count() - 1
        for box in (self.from_box, self.to_box):
            box.blockSignals(True)
            box.clear()
            for version in versions:
                box.addItem(version.label, version.seq)
        if keep and old_from is not None:
            self.from_box.setCurrentIndex(max(0, self.from_box.findData(old_from)))
            to = self.to_box.count() - 1 if follow_newest else self.to_box.findData(old_to)
            self.to_box.setCurrentIndex(max(0, to))
        else:  # the newest change by default
            self.to_box.setCurrentIndex(len(versions) - 1)
            self.from_box.setCurrentIndex(max(0, len(versions) - 2))
        for box in (self.from_box, self.to_box):
            box.blockSignals(False)
        noun = "version" if len(versions) == 1 else "versions"
        self.count.setText(f"{len(versions)} {noun} seen this session")
        self._render()

    def _recorded(self, version: TwinVersion) -> None:
        if self.identity_box.findText(version.identity) < 0:
            self.identity_box.blockSignals(True)
            self.identity_box.addItem(version.identity)
            self.identity_box.blockSignals(False)
            if self.identity_box.count() == 1:
                self._identity_changed(version.identity)
        elif version.identity == self.identity:
            self._fill_versions(keep=True)

    # -- showing -----------------------------------------------------------------------

    def _version(self, box: QComboBox) -> TwinVersion | None:
        return self.history.find(self.identity, box.currentData())

    def restore_from_version(self) -> RestoreDialog | None:
        """Open the restore dialog for the From version (modal: one restore at a time)."""
        version, service = self._version(self.from_box), self._service()
        if version is None or service is None:
            return None
        dialog = RestoreDialog(service, version, self._publish, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _render(self, *_: object) -> None:
        before, after = self._version(self.from_box), self._version(self.to_box)
        self.restore_button.setEnabled(before is not None and self._service() is not None)
        if before is None or after is None:
            self.diff.show_message(
                "No versions recorded yet. Select or pin a twin (Twin > Pin Twin) and its "
                "changes are recorded here while the app runs."
            )
            return
        metadata = self.metadata.isChecked()
        self.diff.show_texts(
            canonical(before.twin, metadata=metadata),
            canonical(after.twin, metadata=metadata),
            f"#{before.seq} etag {before.etag}",
            f"#{after.seq} etag {after.etag}",
        )


def open_history(
    history: TwinHistory,
    identity: str | None,
    parent: QWidget | None,
    *,
    service: Callable[[], Any] | None = None,
    publish: Callable[[PatchEvent], None] | None = None,
) -> TwinHistoryDialog:
    dialog = TwinHistoryDialog(history, identity, parent, service=service, publish=publish)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()  # modeless: the log keeps running beside it (and never exec())
    return dialog
