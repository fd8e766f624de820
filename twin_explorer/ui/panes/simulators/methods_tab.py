"""Direct methods: an answer per method name, and prompts for methods that ask.

A prompt never blocks: it is a row in the panel with a countdown to the time the
module waits (a device never learns the caller's timeout, see simulator/methods.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.simulator import (
    InvalidSettings,
    MethodRule,
    Mode,
    ModuleEvent,
    PendingMethod,
    SimulatedModule,
)
from twin_explorer.ui.common import theme
from twin_explorer.ui.panes.simulators.common import (
    choose,
    chosen,
    clock,
    compact,
    error_label,
    parse_json,
    prepend,
)

STATUS_RANGE = (-(2**31), 2**31 - 1)


def _status_box(name: str, value: int = 200) -> QSpinBox:
    box = QSpinBox()
    box.setObjectName(name)
    box.setRange(*STATUS_RANGE)
    box.setValue(value)
    return box


class MethodPrompt(QFrame):
    """One method waiting for the user's answer."""

    def __init__(self, pending: PendingMethod, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pending = pending
        self.setObjectName("simMethodPrompt")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        theme.style(self, "#simMethodPrompt { background: $warning_bg; }")
        self.title = QLabel(f"<b>{pending.name}</b>({compact(pending.payload)})")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.countdown = QLabel()
        self.countdown.setObjectName("simMethodCountdown")
        self.status = _status_box("simMethodAnswerStatus")
        self.payload = QLineEdit("{}")
        self.payload.setObjectName("simMethodAnswerPayload")
        self.payload.setToolTip("The payload to answer with: any JSON")
        self.problem = error_label("simMethodAnswerError")
        self.answer_button = QPushButton("Answer")
        self.answer_button.setObjectName("simMethodAnswer")
        self.answer_button.setToolTip("Send this answer to the caller now")
        self.answer_button.clicked.connect(self.answer)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.countdown)
        row = QHBoxLayout()
        row.addWidget(QLabel("Status:"))
        row.addWidget(self.status)
        row.addWidget(QLabel("Payload:"))
        row.addWidget(self.payload, 1)
        row.addWidget(self.answer_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.problem)
        self.tick()

    def tick(self) -> None:
        self.countdown.setText(f"answer within {self.pending.remaining():.0f} s")

    def answer(self) -> None:
        payload, problem = parse_json(self.payload.text(), "The payload")
        self.problem.setText(problem)
        if problem:
            return
        try:
            answered = self.pending.answer(self.status.value(), payload)
        except InvalidSettings as error:
            self.problem.setText(error.text)
            return
        if not answered:
            self.problem.setText("Too late: this request has already ended.")
        self.answer_button.setEnabled(False)


class MethodsTab(QWidget):
    def __init__(self, module: SimulatedModule, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.module = module
        self.prompts: dict[str, MethodPrompt] = {}

        self.rules = QListWidget()
        self.rules.setObjectName("simMethodRules")
        self.rules.currentItemChanged.connect(self._rule_selected)
        self.name = QLineEdit()
        self.name.setObjectName("simMethodName")
        self.name.setPlaceholderText("method name, e.g. reboot")
        self.mode = QComboBox()
        self.mode.setObjectName("simMethodMode")
        self.mode.addItem("Answer with", Mode.FIXED)
        self.mode.addItem("Ask me", Mode.ASK)
        self.mode.setToolTip("Answer at once with the status and payload, or ask you each time")
        self.status = _status_box("simMethodStatus")
        self.payload = QLineEdit("{}")
        self.payload.setObjectName("simMethodPayload")
        self.payload.setPlaceholderText('answer payload (JSON), e.g. {"ok": true}')
        self.payload.setToolTip("The payload the method answers with: any JSON")
        self.status.setToolTip("The status the method answers with (200: success)")
        self.problem = error_label("simMethodRuleError")
        self.save_button = QPushButton("Set")
        self.save_button.setObjectName("simMethodSet")
        self.save_button.setToolTip("Answer this method this way from now on")
        self.save_button.clicked.connect(self.save_rule)
        remove = QPushButton("Remove")
        remove.setToolTip("Forget the selected method's answer")
        remove.clicked.connect(self.remove_rule)
        self.others = QComboBox()
        self.others.setObjectName("simMethodOthers")
        self.others.addItem("Answer 404 (no handler)", None)
        self.others.addItem("Ask me", MethodRule(Mode.ASK))
        self.others.setToolTip("What methods without an answer of their own get")
        self.others.currentIndexChanged.connect(
            lambda i: setattr(module.methods, "fallback", self.others.itemData(i))
        )
        self.prompt_area = QVBoxLayout()
        self.history = QListWidget()
        self.history.setObjectName("simMethodHistory")

        form = QFormLayout()
        form.addRow("Method:", self.name)
        answer = QHBoxLayout()
        answer.addWidget(self.mode)
        answer.addWidget(QLabel("status"))
        answer.addWidget(self.status)
        answer.addWidget(QLabel("payload"))
        answer.addWidget(self.payload, 1)
        form.addRow("Answer:", answer)
        buttons = QHBoxLayout()
        buttons.addWidget(self.problem, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(remove)
        form.addRow("", buttons)
        form.addRow("Other methods:", self.others)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Answers by method name:"))
        layout.addWidget(self.rules, 1)
        layout.addLayout(form)
        layout.addLayout(self.prompt_area)
        layout.addWidget(QLabel("Requests:"))
        layout.addWidget(self.history, 1)
        self.mode.currentIndexChanged.connect(self._mode_changed)

        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self._show_rules()

    # -- rules ----------------------------------------------------------------------------

    def _show_rules(self) -> None:
        self.rules.clear()
        for name, rule in sorted(self.module.methods.rules.items()):
            if rule.mode is Mode.ASK:
                text = f"{name}: ask me"
            else:
                text = f"{name}: {rule.status} {compact(rule.payload)}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.rules.addItem(item)

    def _mode_changed(self) -> None:
        fixed = chosen(self.mode, Mode) is Mode.FIXED
        self.status.setEnabled(fixed)
        self.payload.setEnabled(fixed)

    def _rule_selected(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        rule = self.module.methods.rules.get(name)
        if rule is None:
            return
        self.name.setText(name)
        choose(self.mode, rule.mode)
        self.status.setValue(rule.status)
        self.payload.setText(compact(rule.payload))

    def save_rule(self) -> bool:
        name = self.name.text().strip()
        payload, problem = parse_json(self.payload.text(), "The payload")
        if not name:
            problem = "Give the method's name."
        self.problem.setText(problem)
        if problem:
            return False
        try:
            rule = MethodRule(chosen(self.mode, Mode), self.status.value(), payload)
            self.module.methods.set(name, rule)
        except InvalidSettings as error:
            self.problem.setText(error.text)
            return False
        self._show_rules()
        return True

    def remove_rule(self) -> None:
        item = self.rules.currentItem()
        if item is not None:
            self.module.methods.remove(item.data(Qt.ItemDataRole.UserRole))
            self._show_rules()

    # -- requests -------------------------------------------------------------------------

    def on_event(self, event: ModuleEvent) -> None:
        name = event.name
        request_id = event.data.get("request_id")
        if name == "method_requested":
            pending = self.module.pending.get(request_id)
            if pending is not None:
                prompt = MethodPrompt(pending, self)
                self.prompts[request_id] = prompt
                self.prompt_area.addWidget(prompt)
                self._timer.start()
            self._log(event, f"{event.data['name']}({compact(event.data['payload'])}) waiting")
        elif name == "method_answered":
            self._drop_prompt(request_id)
            self._log(
                event,
                f"{event.data['name']}({compact(event.data['request'])}) -> "
                f"{event.data['status']} {compact(event.data['payload'])}",
            )
        elif name == "method_expired":
            self._drop_prompt(request_id)
            self._log(event, f"{event.data['name']}: {event.data['reason']}")

    def _log(self, event: ModuleEvent, text: str) -> None:
        prepend(self.history, f"{clock(event.time)}  {text}")

    def _drop_prompt(self, request_id: str | None) -> None:
        prompt = self.prompts.pop(request_id or "", None)
        if prompt is not None:
            prompt.setParent(None)
            prompt.deleteLater()
        if not self.prompts:
            self._timer.stop()

    def _tick(self) -> None:
        for prompt in self.prompts.values():
            prompt.tick()
