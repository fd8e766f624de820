"""Messages: the cloud-to-device messages a simulated DEVICE received, one row each, the
selected one in full, and Complete / Reject / Abandon while it is pending.

How messages come in is the device's inbox mode: settled by hand (polled over HTTPS,
each locked until settled) or completed on arrival (MQTT). The rows are the inbox's own
(bounded there); a one-second timer counts locks down only while a message is pending.
"""

from __future__ import annotations

import json
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.simulator import (
    InboxMode,
    MessageState,
    ModuleEvent,
    Outcome,
    ReceivedMessage,
    SimulatedModule,
    SimulatorError,
)
from twin_explorer.simulator.inbox import MESSAGE_LIMIT
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.simulators.common import clock, error_label, mono, side_by_side

COLUMNS = ("Message ID", "Received (UTC)", "Body", "Content type", "Properties", "State")
MESSAGE_ID, RECEIVED, BODY, CONTENT, PROPERTIES, STATE = range(len(COLUMNS))
MODES = (
    (InboxMode.BY_HAND, "Settle messages by hand (HTTPS)"),
    (InboxMode.ON_ARRIVAL, "Complete on arrival (MQTT)"),
)
MODE_HELP = (
    "By hand, the device polls the hub's HTTPS endpoint and each message waits, locked, "
    "until you complete, reject or abandon it; over MQTT the protocol completes every "
    "message the moment it arrives, so there is nothing left to settle."
)
STATE_COLOURS = {  # theme roles
    MessageState.PENDING: "info",
    MessageState.COMPLETED: "ok",
    MessageState.REJECTED: "error",
    MessageState.ABANDONED: "muted",
    MessageState.LOCK_EXPIRED: "warning",
}
PREVIEW = 80  # characters of the body shown in the list
HEX_LIMIT = 4096  # bytes shown as hex in the details


def body_text(body: bytes) -> tuple[str, str]:
    """(how it is shown, the text): pretty JSON, plain text, or a hex dump."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "hex", hex_dump(body)
    if "\x00" in text:
        return "hex", hex_dump(body)
    try:
        return "JSON", json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, ValueError):
        return "text", text


def hex_dump(body: bytes) -> str:
    lines = []
    for offset in range(0, min(len(body), HEX_LIMIT), 16):
        chunk = body[offset : offset + 16]
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {shown}")
    if len(body) > HEX_LIMIT:
        lines.append(f"… {len(body) - HEX_LIMIT:,} more bytes")
    return "\n".join(lines) or "(empty)"


def preview(body: bytes) -> str:
    kind, text = body_text(body)
    if kind == "JSON":
        text = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    elif kind == "hex":
        text = body[:32].hex(" ")
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def state_text(message: ReceivedMessage, now: float) -> str:
    if message.pending and message.lock_until is not None:
        left = int(message.lock_until - now)
        return f"pending (lock {left} s)" if left > 0 else "pending (lock ran out)"
    if message.via == "mqtt":
        return "completed on arrival"
    return message.state.value


class MessagesTab(QWidget):
    def __init__(self, module: SimulatedModule, tasks: Tasks, parent: QWidget | None = None):
        super().__init__(parent)
        assert module.inbox is not None, "only devices receive C2D messages"
        self.module = module
        self.inbox = module.inbox
        self._tasks = tasks
        self._items: dict[int, QTreeWidgetItem] = {}

        self.mode = QComboBox()
        self.mode.setObjectName("simInboxMode")
        for mode, text in MODES:
            self.mode.addItem(text, mode.value)
        self.mode.setCurrentIndex(max(0, self.mode.findData(self.inbox.mode.value)))
        self.mode.setToolTip(MODE_HELP)
        self.mode.currentIndexChanged.connect(self._mode_chosen)
        mode_label = QLabel("Receive:")
        mode_label.setBuddy(self.mode)
        mode_label.setToolTip(MODE_HELP)
        self.receiving = QLabel()
        self.receiving.setObjectName("simInboxState")
        self.receiving.setWordWrap(True)
        self.receiving.setToolTip("How receiving cloud-to-device messages goes")
        self.counts = QLabel()
        self.counts.setObjectName("simInboxCounts")
        self.counts.setToolTip("Messages in the list, and how many wait to be settled")

        self.list = QTreeWidget()
        self.list.setObjectName("simMessages")
        self.list.setHeaderLabels(COLUMNS)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip(
            f"Cloud-to-device messages this device received, newest first (the last "
            f"{MESSAGE_LIMIT} kept). {MODE_HELP}"
        )
        header = self.list.header()
        header.setStretchLastSection(False)
        for column in (MESSAGE_ID, RECEIVED, CONTENT, PROPERTIES, STATE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(BODY, QHeaderView.ResizeMode.Stretch)
        self.list.itemSelectionChanged.connect(self._show_selected)

        self.details = QPlainTextEdit()
        self.details.setObjectName("simMessageDetails")
        self.details.setReadOnly(True)
        self.details.setFont(mono())
        self.details.setPlaceholderText("Select a message to see its body and properties.")
        self.details.setToolTip("The selected message: body, system and application properties")

        self.complete = self._button(
            "Complete", "simComplete", "Take the message: it leaves the device's queue"
        )
        self.reject = self._button(
            "Reject",
            "simReject",
            "Refuse the message: the hub dead-letters it (the sender's feedback says so)",
        )
        self.abandon = self._button(
            "Abandon",
            "simAbandon",
            "Give the message back: it is offered again, its delivery count one higher",
        )
        self.complete.clicked.connect(lambda: self.settle(Outcome.COMPLETE))
        self.reject.clicked.connect(lambda: self.settle(Outcome.REJECT))
        self.abandon.clicked.connect(lambda: self.settle(Outcome.ABANDON))
        self.problem = error_label("simMessageError")

        # The settle buttons share the top row: the dock is short, and a row of its own
        # made the tab taller than the dock, so it scrolled away from the list.
        top = QHBoxLayout()
        top.addWidget(mode_label)
        top.addWidget(self.mode)
        top.addWidget(self.receiving, 1)
        top.addWidget(self.counts)
        top.addWidget(self.complete)
        top.addWidget(self.reject)
        top.addWidget(self.abandon)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.details, 1)
        side_layout.addWidget(self.problem)  # its own line: a sentence, under what it is about
        split = side_by_side("simMessagesSplit", self.list, side, (3, 2))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._show_receiving()
        self._sync()
        theme.on_change(self, self._recolour)

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(f"{tip} (only while the selected message is pending)")
        button.setEnabled(False)
        return button

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: ModuleEvent) -> None:
        if event.name in ("message_received", "message_settled"):
            self._sync()
        elif event.name == "inbox":
            self._show_receiving()

    def _show_receiving(self) -> None:
        state = self.inbox.state
        problem = "Trying again" in state
        self.receiving.setText(state[:1].upper() + state[1:] if state else "")
        theme.text_colour(self.receiving, "warning" if problem else "muted")

    def _sync(self) -> None:
        """The rows as the inbox holds them: new ones on top, dropped ones gone."""
        messages = self.inbox.messages
        for number in [n for n in self._items if n not in messages]:
            item = self._items.pop(number)
            self.list.takeTopLevelItem(self.list.indexOfTopLevelItem(item))
        now = time.time()
        for message in messages.values():
            item = self._items.get(message.number)
            if item is None:
                item = QTreeWidgetItem()
                item.setData(0, Qt.ItemDataRole.UserRole, message.number)
                item.setFont(BODY, mono())
                self.list.insertTopLevelItem(0, item)
                self._items[message.number] = item
            self._fill(item, message, now)
        pending = sum(1 for m in messages.values() if m.pending)
        self.counts.setText(f"{len(messages)} received · {pending} pending")
        if pending and not self._timer.isActive():
            self._timer.start()
        elif not pending:
            self._timer.stop()
        self._show_selected()

    def _fill(self, item: QTreeWidgetItem, message: ReceivedMessage, now: float) -> None:
        count = len(message.properties)
        shown = preview(message.body)  # parses the body: once for the cell and its tooltip
        cells = (
            message.message_id or "(none)",
            clock(message.received_at),
            shown,
            message.content_type,
            f"{count} propert{'y' if count == 1 else 'ies'}",
            state_text(message, now),
        )
        for column, text in enumerate(cells):
            item.setText(column, text)
        item.setToolTip(STATE, message.note or state_text(message, now))
        item.setForeground(STATE, theme.brush(STATE_COLOURS[message.state]))
        item.setToolTip(BODY, shown)
        item.setToolTip(RECEIVED, message.received_at)

    def _recolour(self) -> None:
        for number, item in self._items.items():
            message = self.inbox.messages.get(number)
            if message is not None:
                item.setForeground(STATE, theme.brush(STATE_COLOURS[message.state]))
        self._show_receiving()

    def _tick(self) -> None:
        now = time.time()
        for number, item in self._items.items():
            message = self.inbox.messages.get(number)
            if message is not None and message.pending:
                item.setText(STATE, state_text(message, now))
        if not any(m.pending for m in self.inbox.messages.values()):
            self._timer.stop()
        self._show_selected()

    # -- the selected message --------------------------------------------------------------

    def selected(self) -> ReceivedMessage | None:
        items = self.list.selectedItems()
        if not items:
            return None
        return self.inbox.messages.get(items[0].data(0, Qt.ItemDataRole.UserRole))

    def _show_selected(self) -> None:
        message = self.selected()
        settle = message is not None and message.pending and message.via == "https"
        for button in (self.complete, self.reject, self.abandon):
            button.setEnabled(settle)
        text = "" if message is None else details(message)
        if text != self.details.toPlainText():
            self.details.setPlainText(text)

    def settle(self, outcome: Outcome) -> None:
        message = self.selected()
        if message is None or not message.pending:
            return
        self.problem.setText("")
        for button in (self.complete, self.reject, self.abandon):
            button.setEnabled(False)  # one outcome per lock; the events re-enable
        self._tasks.spawn(self._settle(message.number, outcome))

    async def _settle(self, number: int, outcome: Outcome) -> None:
        try:
            await self.module.settle_message(number, outcome)
        except SimulatorError as error:
            self.problem.setText(error.text)
        self._show_selected()

    def _mode_chosen(self) -> None:
        mode = InboxMode(self.mode.currentData())
        self.problem.setText("")
        self._tasks.spawn(self._set_mode(mode))

    async def _set_mode(self, mode: InboxMode) -> None:
        try:
            await self.module.set_inbox_mode(mode)
        except SimulatorError as error:
            self.problem.setText(error.text)
        self._show_receiving()
        self._show_selected()


def details(message: ReceivedMessage) -> str:
    # No countdown here: the text changes only when the message does (scroll stays put).
    kind, text = body_text(message.body)
    state = "completed on arrival" if message.via == "mqtt" else message.state.value
    lines = [
        f"Message ID: {message.message_id or '(none)'}",
        f"State: {state}" + (f" — {message.note}" if message.note else ""),
        f"Received: {message.received_at} over {message.via.upper()}",
    ]
    if message.pending and message.lock_until is not None:
        until = time.strftime("%H:%M:%S", time.gmtime(message.lock_until))
        lines.append(f"Locked until: {until} UTC (then the hub offers it again)")
    count = message.delivery_count
    if count is not None:
        lines.append(f"Earlier deliveries: {count}")
    lines += ["", f"Body ({kind}, {len(message.body):,} bytes):", text, ""]
    lines.append("System properties:")
    lines += [f"  {k}: {v}" for k, v in message.system.items()] or ["  (none)"]
    if message.content_type:
        lines.append(f"  contentType: {message.content_type}")
    lines += ["", "Application properties:"]
    lines += [f"  {k}: {v}" for k, v in message.properties.items()] or ["  (none)"]
    return "\n".join(lines)
