"""Restore a twin to a version from its history: the patch is built from the twin as
the hub holds it now, shown with its diff, and sent only when people say so, guarded by
that twin's etag (a twin that moves on meanwhile gets the patch rebuilt, never
overwritten)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service import errors
from twin_explorer.service.bulk.restore import RestorePlan, plan_restore, send_restore
from twin_explorer.service.history import TwinVersion
from twin_explorer.twin.events import PatchEvent
from twin_explorer.ui.common.tasks import AsyncDialog
from twin_explorer.ui.panes.patch_log.diff_view import DiffView


class RestoreDialog(AsyncDialog):
    def __init__(
        self,
        service: Any,
        version: TwinVersion,
        publish: Callable[[PatchEvent], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("restoreVersion")
        self.setWindowTitle(f"Restore {version.identity} to Version #{version.seq}")
        self.resize(820, 560)
        self.service, self.version, self.publish = service, version, publish
        self.plan: RestorePlan | None = None

        self.status = QLabel("Reading the twin as it is now…")
        self.status.setObjectName("restoreStatus")
        self.status.setWordWrap(True)
        self.diff = DiffView()
        self.patch_text = QPlainTextEdit()
        self.patch_text.setObjectName("restorePatch")
        self.patch_text.setReadOnly(True)
        self.patch_text.setMaximumHeight(140)
        self.patch_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.patch_text.setToolTip("Exactly what is sent: a merge patch (null removes a key)")
        buttons = QDialogButtonBox()
        self.send_button = QPushButton("Send Patch")
        self.send_button.setObjectName("restoreSend")
        self.send_button.setToolTip(
            "Send this patch with the twin's etag: if the twin changes first, nothing is "
            "written and the patch is built again"
        )
        self.send_button.setEnabled(False)
        buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.send_button.clicked.connect(self.send)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.diff, 1)
        layout.addWidget(QLabel("Patch to send:"))
        layout.addWidget(self.patch_text)
        layout.addWidget(buttons)
        self.rebuild()

    def rebuild(self, note: str = "") -> None:
        self.send_button.setEnabled(False)
        self.tasks.spawn(self._plan(note), on_error=self._failed)

    async def _plan(self, note: str) -> None:
        plan = self.plan = await plan_restore(self.service, self.version.twin)
        self.diff.show_texts(plan.now_text, plan.then_text, "now", f"#{self.version.seq}")
        self.patch_text.setPlainText(json.dumps(plan.patch, indent=2, ensure_ascii=False))
        if not plan.patch:
            self.status.setText(
                f"{note}Tags and desired properties are already as in version "
                f"#{self.version.seq}: nothing to send."
            )
            return
        self.status.setText(
            f"{note}This patch brings tags and desired properties back to version "
            f"#{self.version.seq}. Reported properties stay as the device reports them."
        )
        self.send_button.setEnabled(True)

    def send(self) -> None:
        if self.plan is None or not self.plan.patch:
            return
        self.send_button.setEnabled(False)
        self.status.setText("Sending…")
        self.tasks.spawn(self._send(self.plan), on_error=self._failed)

    async def _send(self, plan: RestorePlan) -> None:
        try:
            await send_restore(self.service, plan, self.publish)
        except errors.PreconditionFailed:
            self.rebuild(
                "The twin changed since the patch was built; nothing was written. The patch "
                "below is built from its newest version: check it and send again. "
            )
            return
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Could not restore: {exc}")
        self.send_button.setEnabled(self.plan is not None and bool(self.plan.patch))
