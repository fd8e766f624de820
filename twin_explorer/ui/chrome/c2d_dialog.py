"""Send a cloud-to-device message to a device and follow what becomes of it.

Modeless: the window stays usable while feedback is awaited (a simulated device may have
to take the message). The messages belong to the app's ``Outbox``, not to the dialog:
closing it lets a send finish, and opening it again shows the messages sent to that
device with their feedback so far.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.browse import DeviceRow
from twin_explorer.service.c2d.message import (
    MAX_TTL_SECONDS,
    Ack,
    OutgoingMessage,
    new_message_id,
    problems,
)
from twin_explorer.service.c2d.outbox import Outbox, Sent, State
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks

CONTENT_TYPES = ("", "application/json", "text/plain", "application/octet-stream")
STATE_COLOURS = {
    State.FAILED: "error",
    State.UNDELIVERED: "warning",
    State.DELIVERED: "ok",
}
NOT_FOR_MODULES = "Modules cannot receive cloud-to-device messages: choose a device."


class SendMessageDialog(QDialog):
    def __init__(
        self,
        outbox: Outbox,
        device_id: str,
        send: Callable[[OutgoingMessage], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.outbox = outbox
        self.device_id = device_id
        self._send = send
        self.setObjectName("sendMessageDialog")
        self.setModal(False)
        self.setWindowTitle(f"Send Message to Device — {device_id}")
        self.setMinimumSize(620, 640)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.body_edit = QPlainTextEdit()
        self.body_edit.setObjectName("c2dBody")
        self.body_edit.setFont(mono)
        self.body_edit.setPlaceholderText("The message body (text)")
        self.body_edit.setToolTip("What the device receives, as UTF-8 text (at most 64 KB)")
        self.body_edit.setMaximumHeight(140)  # the sent messages below get the room
        self.content_type = QComboBox()
        self.content_type.setObjectName("c2dContentType")
        self.content_type.setEditable(True)
        self.content_type.addItems(CONTENT_TYPES)
        line = self.content_type.lineEdit()
        assert line is not None
        line.setPlaceholderText("none")
        self.content_type.setToolTip(
            "The body's content type; with application/json the body must be valid JSON"
        )
        self.content_encoding = QLineEdit()
        self.content_encoding.setObjectName("c2dContentEncoding")
        self.content_encoding.setPlaceholderText("none, e.g. utf-8")
        self.content_encoding.setToolTip("The body's content encoding, e.g. utf-8 (optional)")

        self.properties = QTableWidget(0, 2)
        self.properties.setObjectName("c2dProperties")
        self.properties.setHorizontalHeaderLabels(["Name", "Value"])
        self.properties.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.properties.verticalHeader().setVisible(False)
        self.properties.setMinimumHeight(90)
        self.properties.setMaximumHeight(130)  # the sent messages below get the room
        self.properties.setToolTip(
            "Application properties: name and value pairs the device receives with the body"
        )
        self.add_property = QPushButton("Add Property")
        self.add_property.setObjectName("c2dAddProperty")
        self.add_property.setToolTip("Add a row; type its name, Tab, then its value")
        self.add_property.clicked.connect(self._add_property)
        self.remove_property = QPushButton("Remove Property")
        self.remove_property.setObjectName("c2dRemoveProperty")
        self.remove_property.setToolTip("Remove the chosen property row")
        self.remove_property.clicked.connect(self._remove_property)
        property_buttons = QVBoxLayout()
        property_buttons.addWidget(self.add_property)
        property_buttons.addWidget(self.remove_property)
        property_buttons.addStretch(1)
        property_row = QHBoxLayout()
        property_row.addWidget(self.properties, 1)
        property_row.addLayout(property_buttons)

        self.message_id = QLineEdit(new_message_id())
        self.message_id.setObjectName("c2dMessageId")
        self.message_id.setToolTip(
            "Identifies the message in the feedback; a new one is made after each send"
        )
        self.new_id = QPushButton("New Id")
        self.new_id.setObjectName("c2dNewId")
        self.new_id.setToolTip("Make a new random message id")
        self.new_id.clicked.connect(lambda: self.message_id.setText(new_message_id()))
        id_row = QHBoxLayout()
        id_row.addWidget(self.message_id, 1)
        id_row.addWidget(self.new_id)
        self.correlation_id = QLineEdit()
        self.correlation_id.setObjectName("c2dCorrelationId")
        self.correlation_id.setPlaceholderText("optional")
        self.correlation_id.setToolTip("A correlation id the device may use to answer (optional)")
        self.ttl = QSpinBox()
        self.ttl.setObjectName("c2dTtl")
        self.ttl.setRange(0, MAX_TTL_SECONDS)
        self.ttl.setSpecialValueText("Hub default (1 hour)")
        self.ttl.setSuffix(" s")
        self.ttl.setToolTip(
            "Seconds the hub keeps the message for the device before it expires (at most two days)"
        )
        self.ack = QComboBox()
        self.ack.setObjectName("c2dAck")
        for ack in Ack:
            self.ack.addItem(ack.label, ack)
        self.ack.setCurrentIndex(list(Ack).index(Ack.FULL))
        self.ack.setToolTip(
            "Which outcomes the hub reports back (iothub-ack): completed, rejected, expired"
        )

        form = QFormLayout()
        form.addRow("Body:", self.body_edit)
        form.addRow("Content type:", self.content_type)
        form.addRow("Content encoding:", self.content_encoding)
        form.addRow("Properties:", property_row)
        form.addRow("Message id:", id_row)
        form.addRow("Correlation id:", self.correlation_id)
        form.addRow("Time to live:", self.ttl)
        form.addRow("Feedback:", self.ack)

        self.problem = QLabel()
        self.problem.setObjectName("c2dProblem")
        self.problem.setWordWrap(True)
        theme.text_colour(self.problem, "error")
        self.status = QLabel()
        self.status.setObjectName("c2dStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.feedback_problem = QLabel()
        self.feedback_problem.setObjectName("c2dFeedbackProblem")
        self.feedback_problem.setWordWrap(True)
        self.feedback_problem.setToolTip("Why feedback cannot come now; it is tried again")
        theme.text_colour(self.feedback_problem, "warning")
        self.feedback_problem.hide()

        self.sent = QTableWidget(0, 3)
        self.sent.setObjectName("c2dSent")
        self.sent.setHorizontalHeaderLabels(["Sent", "Message id", "What happened"])
        header = self.sent.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.sent.setColumnWidth(1, 180)
        self.sent.verticalHeader().setVisible(False)
        self.sent.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sent.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.sent.setWordWrap(True)
        self.sent.setToolTip("The messages sent to this device from here, newest first")
        self.sent.setMinimumHeight(150)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.send_button = self.buttons.addButton("Send", QDialogButtonBox.ButtonRole.ActionRole)
        self.send_button.setObjectName("c2dSend")
        self.send_button.clicked.connect(self.send)
        close = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setToolTip("Close this dialog; messages on their way keep going")
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.status)
        layout.addWidget(self.feedback_problem)
        layout.addWidget(QLabel("Sent messages:"))
        layout.addWidget(self.sent, 1)
        layout.addWidget(self.buttons)

        for signal in (
            self.body_edit.textChanged,
            self.content_type.currentTextChanged,
            self.content_encoding.textChanged,
            self.message_id.textChanged,
            self.correlation_id.textChanged,
            self.ttl.valueChanged,
            self.properties.itemChanged,
        ):
            signal.connect(self._validate)
        self.properties.model().rowsRemoved.connect(self._validate)
        self._unsubscribes = [
            outbox.changed.subscribe(self._changed),
            outbox.feedback_problem.subscribe(self._feedback_problem),
        ]
        self._feedback_problem(outbox.feedback_problem.value)
        theme.on_change(self, self._show_sent)  # the outcome colours follow light and dark
        self._show_sent()
        self._validate()

    # -- the message -----------------------------------------------------------------------

    def _add_property(self) -> None:
        row = self.properties.rowCount()
        self.properties.insertRow(row)
        for column in (0, 1):
            self.properties.setItem(row, column, QTableWidgetItem(""))
        self.properties.setCurrentCell(row, 0)
        self.properties.setFocus()
        self.properties.editItem(self.properties.item(row, 0))
        self._validate()

    def _remove_property(self) -> None:
        row = self.properties.currentRow()
        if row >= 0:
            self.properties.removeRow(row)

    def _property_pairs(self) -> tuple[tuple[str, str], ...]:
        pairs = []
        for row in range(self.properties.rowCount()):
            name, value = (self.properties.item(row, c) for c in (0, 1))
            key = name.text().strip() if name is not None else ""
            text = value.text() if value is not None else ""
            if key or text:
                pairs.append((key, text))
        return tuple(pairs)

    def message(self) -> OutgoingMessage:
        ack = self.ack.currentData()
        return OutgoingMessage(
            self.device_id,
            body=self.body_edit.toPlainText(),
            content_type=self.content_type.currentText().strip(),
            content_encoding=self.content_encoding.text().strip(),
            properties=self._property_pairs(),
            message_id=self.message_id.text().strip(),
            ttl_seconds=self.ttl.value() or None,
            ack=ack if isinstance(ack, Ack) else Ack.NONE,
            correlation_id=self.correlation_id.text().strip(),
        )

    def _validate(self) -> bool:
        found = problems(self.message())
        self.problem.setText(" ".join(found))
        self.send_button.setEnabled(not found)
        self.send_button.setToolTip(
            found[0] if found else "Send the message; the hub queues it for the device"
        )
        return not found

    def send(self) -> None:
        if not self._validate():
            return
        message = self.message()
        theme.text_colour(self.status, None)
        self.status.setText("Sending…")
        self._send(message)
        self.message_id.setText(new_message_id())  # the next one is another message

    # -- what became of the messages -----------------------------------------------------

    def _mine(self) -> list[Sent]:
        return [entry for entry in self.outbox.entries if entry.device_id == self.device_id]

    def _changed(self, entry: Sent) -> None:
        if entry.device_id != self.device_id:
            return
        self._show_sent()
        if self._mine() and self._mine()[0] is entry:  # the newest: also in the status line
            theme.text_colour(self.status, STATE_COLOURS.get(entry.state))
            self.status.setText(entry.text)

    def _show_sent(self) -> None:
        mine = self._mine()
        self.sent.setRowCount(len(mine))
        for row, entry in enumerate(mine):
            at = entry.at.astimezone().strftime("%H:%M:%S")
            role = STATE_COLOURS.get(entry.state)
            for column, text in enumerate((at, entry.message_id, entry.text)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if role is not None and column == 2:
                    item.setForeground(theme.brush(role))
                self.sent.setItem(row, column, item)
        self.sent.resizeRowsToContents()

    def _feedback_problem(self, text: str | None) -> None:
        self.feedback_problem.setText(text or "")
        self.feedback_problem.setVisible(bool(text))

    def done(self, result: int) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        super().done(result)


class SendMessage:
    """ "Send Message to Device…": enabled for a device row of a connected hub; opens (or
    raises) the device's dialog."""

    def __init__(
        self,
        window: QWidget,
        current_row: Callable[[], object],
        outbox: Outbox,
        report: Callable[[object], None],
    ) -> None:
        self._window = window
        self._current_row = current_row
        self.outbox = outbox
        self._connected = False
        self._tasks = Tasks(on_error=report)
        self.dialogs: dict[str, SendMessageDialog] = {}
        self.action = QAction("Send Message to De&vice…", window)
        self.action.setObjectName("sendC2DMessage")
        self.action.setStatusTip("Send a cloud-to-device message to the chosen device")
        self.action.triggered.connect(self.open)
        self.update()

    def set_service(self, service: object) -> None:
        """Another hub (or none): the open dialogs were for the devices of the last one."""
        self._connected = service is not None
        for dialog in list(self.dialogs.values()):
            dialog.close()
        self.update()

    def update(self, *_: object) -> None:
        row = self._current_row()
        module = getattr(row, "is_module", False) or bool(getattr(row, "module_id", None))
        device = isinstance(row, DeviceRow) and not module
        self.action.setEnabled(self._connected and device)
        if module:
            self.action.setToolTip(NOT_FOR_MODULES)
            self.action.setStatusTip(NOT_FOR_MODULES)
        else:
            tip = "Send a cloud-to-device message to the chosen device"
            self.action.setToolTip(tip)
            self.action.setStatusTip(tip)

    def open(self) -> SendMessageDialog | None:
        row = self._current_row()
        if not self.action.isEnabled() or not isinstance(row, DeviceRow):
            return None
        dialog = self.dialogs.get(row.device_id)
        if dialog is None:
            dialog = SendMessageDialog(self.outbox, row.device_id, self._spawn, self._window)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(lambda *_, d=row.device_id: self.dialogs.pop(d, None))
            self.dialogs[row.device_id] = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _spawn(self, message: OutgoingMessage) -> None:
        # The send belongs to the outbox, not the dialog: closing the dialog lets it finish.
        self._tasks.spawn(self.outbox.send(message))

    async def aclose(self) -> None:
        await self._tasks.cancel_all()
