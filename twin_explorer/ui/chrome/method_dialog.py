"""Invoke a direct method on a device or module and show what it answered.

The dialog is modeless: the rest of the window stays usable while a call waits (a
simulated module's "Ask me" prompt, in the dock, is answered there). The call itself
belongs to ``MethodCalls``, not to the dialog: closing the dialog mid-call lets the call
go on, and its answer lands in the patch log and the status line.
"""

from __future__ import annotations

import asyncio
import json

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.hub import HubService
from twin_explorer.service.method_calls import MethodCall, MethodCalls
from twin_explorer.twin.identity import identity_path
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import AsyncDialog

MAX_PAYLOAD_BYTES = 128 * 1024  # IoT Hub's limit for method payloads, each way


class MethodDialog(AsyncDialog):
    def __init__(
        self,
        service: HubService,
        device_id: str,
        module_id: str | None = None,
        parent: QWidget | None = None,
        *,
        calls: MethodCalls | None = None,
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._device_id = device_id
        self._module_id = module_id
        self._calls = calls or MethodCalls()
        self._call: asyncio.Task[MethodCall] | None = None
        target = identity_path(device_id, module_id)
        self.setObjectName("methodDialog")
        self.setModal(False)  # never block the window: a panel may have to answer the call
        self.setWindowTitle(f"Direct Method — {target}")
        self.setMinimumSize(560, 480)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("methodName")
        self.name_edit.setPlaceholderText("e.g. reboot")
        self.name_edit.setToolTip("The method's name, as the device or module handles it")
        self.payload_edit = QPlainTextEdit("{}")
        self.payload_edit.setObjectName("methodPayload")
        self.payload_edit.setFont(mono)
        self.payload_edit.setToolTip("The request payload: any JSON, up to 128 KB")
        self.payload_error = QLabel()
        self.payload_error.setObjectName("methodPayloadError")
        theme.text_colour(self.payload_error, "error")
        self.response_timeout = QSpinBox()
        self.response_timeout.setObjectName("responseTimeout")
        self.response_timeout.setRange(5, 300)
        self.response_timeout.setValue(30)
        self.response_timeout.setSuffix(" s")
        self.response_timeout.setToolTip("How long the hub waits for the answer")
        self.connect_timeout = QSpinBox()
        self.connect_timeout.setObjectName("connectTimeout")
        self.connect_timeout.setRange(0, 300)
        self.connect_timeout.setSuffix(" s")
        self.connect_timeout.setToolTip(
            "How long the hub waits for the target to connect (0: it must be connected now)"
        )
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
        self.invoke_button.setToolTip("Call the method and wait for its answer")
        self.invoke_button.clicked.connect(self.invoke)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        self.timing = QLabel()
        self.timing.setObjectName("methodTiming")
        response_row = QHBoxLayout()
        response_row.addWidget(QLabel("Response:"), 1)
        response_row.addWidget(self.timing)
        layout.addLayout(response_row)
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
        ok = not problem and bool(self.name_edit.text().strip()) and not self.invoking
        self.invoke_button.setEnabled(ok)
        return ok

    @property
    def invoking(self) -> bool:
        return self._call is not None

    def invoke(self) -> None:
        if not self._validate():
            return
        name = self.name_edit.text().strip()
        self._call = self._calls.start(
            self._service,
            self._device_id,
            self._module_id,
            name,
            self.payload(),
            response_timeout=self.response_timeout.value(),
            connect_timeout=self.connect_timeout.value(),
        )
        self._call.add_done_callback(self._finished)
        self.invoke_button.setEnabled(False)
        theme.text_colour(self.status, None)
        self.status.setText(
            f"Waiting for the answer to {name} (up to {self.response_timeout.value()} s)… "
            "Closing this dialog does not stop the call: its answer goes to the patch log."
        )
        self.response.setPlainText("")
        self.timing.setText("")

    def _finished(self, task: asyncio.Task[MethodCall]) -> None:
        self._call = None
        if task.cancelled():
            theme.text_colour(self.status, "warning")
            self.status.setText("The call was stopped.")
        else:
            self.show_call(task.result())
        self._validate()

    def show_call(self, call: MethodCall) -> None:
        if not call.answered:
            theme.text_colour(self.status, "error")
            self.status.setText(call.error or "No answer.")
            return
        good = 200 <= (call.status or 0) < 300
        theme.text_colour(self.status, "ok" if good else "warning")
        self.status.setText(f"Status {call.status}")
        self.timing.setText(f"answered in {call.seconds:.1f} s")
        self.response.setPlainText(json.dumps(call.response, indent=2, ensure_ascii=False))

    def done(self, result: int) -> None:
        # The call goes on without this dialog (it is deleted on close): stop listening.
        if self._call is not None:
            self._call.remove_done_callback(self._finished)
            self._call = None
        super().done(result)
