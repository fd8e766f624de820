"""Invoke a direct method on a device or module and show what it answered."""

from __future__ import annotations

import json

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.errors import ServiceError
from twin_explorer.service.hub import HubService
from twin_explorer.twin.identity import identity_path
from twin_explorer.ui import theme
from twin_explorer.ui.tasks import AsyncDialog

MAX_PAYLOAD_BYTES = 128 * 1024  # IoT Hub's limit for method payloads, each way


class MethodDialog(AsyncDialog):
    def __init__(
        self,
        service: HubService,
        device_id: str,
        module_id: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._device_id = device_id
        self._module_id = module_id
        self._invoking = False
        target = identity_path(device_id, module_id)
        self.setObjectName("methodDialog")
        self.setWindowTitle(f"Direct Method — {target}")
        self.setMinimumSize(560, 480)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("methodName")
        self.name_edit.setPlaceholderText("e.g. reboot")
        self.payload_edit = QPlainTextEdit("{}")
        self.payload_edit.setObjectName("methodPayload")
        self.payload_edit.setFont(mono)
        self.payload_error = QLabel()
        self.payload_error.setObjectName("methodPayloadError")
        theme.text_colour(self.payload_error, "error")
        self.response_timeout = QSpinBox()
        self.response_timeout.setObjectName("responseTimeout")
        self.response_timeout.setRange(5, 300)
        self.response_timeout.setValue(30)
        self.response_timeout.setSuffix(" s")
        self.connect_timeout = QSpinBox()
        self.connect_timeout.setObjectName("connectTimeout")
        self.connect_timeout.setRange(0, 300)
        self.connect_timeout.setSuffix(" s")
        self.status = QLabel()
        self.status.setObjectName("methodStatus")
        self.status.setWordWrap(True)
        self.response = QPlainTextEdit()
        self.response.setObjectName("methodResponse")
        self.response.setReadOnly(True)
        self.response.setFont(mono)

        form = QFormLayout()
        form.addRow("Method name:", self.name_edit)
        form.addRow("Payload (JSON):", self.payload_edit)
        form.addRow("", self.payload_error)
        form.addRow("Response timeout:", self.response_timeout)
        form.addRow("Connect timeout:", self.connect_timeout)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.invoke_button = self.buttons.addButton(
            "Invoke", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.invoke_button.setObjectName("invokeMethod")
        self.invoke_button.clicked.connect(self.invoke)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Response:"))
        layout.addWidget(self.response, 1)
        layout.addWidget(self.buttons)

        self.name_edit.textChanged.connect(self._validate)
        self.payload_edit.textChanged.connect(self._validate)
        self._validate()

    def payload(self) -> object:
        text = self.payload_edit.toPlainText().strip()
        return json.loads(text) if text else None

    def _validate(self) -> bool:
        problem = ""
        try:
            payload = self.payload()
            if len(json.dumps(payload).encode()) > MAX_PAYLOAD_BYTES:
                problem = "The payload is larger than IoT Hub's 128 KB limit for methods."
        except json.JSONDecodeError as exc:
            problem = f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        self.payload_error.setText(problem)
        ok = not problem and bool(self.name_edit.text().strip()) and not self._invoking
        self.invoke_button.setEnabled(ok)
        return ok

    def invoke(self) -> None:
        if not self._validate():
            return
        self._invoking = True
        self.invoke_button.setEnabled(False)
        theme.text_colour(self.status, None)
        self.status.setText("Waiting for the answer…")
        self.response.setPlainText("")
        self.tasks.spawn(self._invoke())

    async def _invoke(self) -> None:
        try:
            result = await self._service.invoke_method(
                self._device_id,
                self._module_id,
                self.name_edit.text().strip(),
                self.payload(),
                response_timeout=self.response_timeout.value(),
                connect_timeout=self.connect_timeout.value(),
            )
        except ServiceError as exc:
            theme.text_colour(self.status, "error")
            self.status.setText(exc.text)
        else:
            good = 200 <= result.status < 300
            theme.text_colour(self.status, "ok" if good else "warning")
            self.status.setText(f"Status {result.status}")
            self.response.setPlainText(json.dumps(result.payload, indent=2))
        finally:
            self._invoking = False
            self._validate()
