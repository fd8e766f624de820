"""How the module answers desired patches, and sending reported patches by hand."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.simulator import Behaviour, InvalidPatch, SimulatedModule, SimulatorError
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.simulators.common import (
    choose,
    chosen,
    error_label,
    json_editor,
    parse_json,
)


class ReportedTab(QWidget):
    def __init__(self, module: SimulatedModule, tasks: Tasks, parent: QWidget | None = None):
        super().__init__(parent)
        self.module = module
        self._tasks = tasks
        self._sending = False

        self.behaviour = QComboBox()
        self.behaviour.setObjectName("simBehaviour")
        for behaviour in Behaviour:
            self.behaviour.addItem(behaviour.label, behaviour)
        choose(self.behaviour, module.behaviour)
        self.behaviour.currentIndexChanged.connect(self._behaviour_changed)

        self.editor = json_editor("simReportedEditor", '{\n  "status": "ok"\n}')
        self.editor.setPlaceholderText('A reported patch, e.g. {"firmware": "1.2", "old": null}')
        self.problem = error_label("simReportedError")
        self.result = QLabel()
        self.result.setObjectName("simReportedResult")
        self.result.setWordWrap(True)
        self.send_button = QPushButton("Send Reported Patch")
        self.send_button.setObjectName("simSendReported")
        self.send_button.clicked.connect(self.send)

        form = QFormLayout()
        form.addRow("On a desired patch:", self.behaviour)
        buttons = QHBoxLayout()
        buttons.addWidget(self.result, 1)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Reported patch (JSON merge patch; null deletes):"))
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self.editor.textChanged.connect(self.validate)
        self.validate()

    def _behaviour_changed(self) -> None:
        self.module.behaviour = chosen(self.behaviour, Behaviour)

    def patch(self) -> object:
        value, _ = parse_json(self.editor.toPlainText(), "The patch")
        return value

    def validate(self) -> bool:
        value, problem = parse_json(self.editor.toPlainText(), "The patch")
        if not problem:
            try:
                self.module.check_reported(value)
            except InvalidPatch as error:
                problem = error.text
        self.problem.setText(problem)
        ok = not problem and not self._sending
        self.send_button.setEnabled(ok)
        return ok

    def send(self) -> None:
        if not self.validate():
            return
        patch = self.patch()
        self._sending = True
        self.send_button.setEnabled(False)
        theme.text_colour(self.result, None)
        self.result.setText("Sending…")
        self._tasks.spawn(self._send(patch))

    async def _send(self, patch: dict) -> None:
        try:
            await self.module.report(patch)
        except SimulatorError as error:
            theme.text_colour(self.result, "error")
            self.result.setText(error.text)
        else:
            theme.text_colour(self.result, "ok")
            self.result.setText("Sent.")
        finally:
            self._sending = False
            self.validate()
