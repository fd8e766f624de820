"""The Send Message to Device dialog checks the message as it is typed: Send is enabled
only when the message can go, and says why not; it hands over every field it shows; the
action is offered for devices, never for modules."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QWidget

from twin_explorer.service.browse import DeviceRow, ModuleRow
from twin_explorer.service.c2d.message import MAX_MESSAGE_BYTES, Ack, OutgoingMessage
from twin_explorer.service.c2d.outbox import Outbox
from twin_explorer.ui.chrome.c2d_dialog import NOT_FOR_MODULES, SendMessage, SendMessageDialog


@pytest.fixture
def handed() -> list[OutgoingMessage]:
    return []


@pytest.fixture
def dialog(qtbot, handed) -> SendMessageDialog:
    made = SendMessageDialog(Outbox(lambda: None), "thermostat", handed.append)
    qtbot.addWidget(made)
    made.show()
    qtbot.waitExposed(made)
    return made


def _set_property(dialog: SendMessageDialog, row: int, name: str, value: str) -> None:
    dialog.add_property.click()
    dialog.properties.item(row, 0).setText(name)
    dialog.properties.item(row, 1).setText(value)


def test_a_json_body_must_be_json(dialog):
    dialog.content_type.setCurrentText("application/json")
    dialog.body_edit.setPlainText('{"on": tru')
    assert not dialog.send_button.isEnabled()
    assert dialog.problem.text().startswith("The body is not valid JSON")
    assert dialog.send_button.toolTip().startswith("The body is not valid JSON")
    dialog.content_type.setCurrentText("text/plain")  # any text is fine then
    assert dialog.send_button.isEnabled() and dialog.problem.text() == ""
    dialog.content_type.setCurrentText("application/json")
    dialog.body_edit.setPlainText('{"on": true}')
    assert dialog.send_button.isEnabled()


def test_properties_need_a_name_once_and_not_iothubs(dialog):
    _set_property(dialog, 0, "", "kitchen")
    assert dialog.problem.text() == "Property 1 has no name."
    dialog.properties.item(0, 0).setText("room")
    assert dialog.send_button.isEnabled()
    _set_property(dialog, 1, "room", "hall")
    assert "The property 'room' is there twice." in dialog.problem.text()
    dialog.properties.item(1, 0).setText("iothub-ack")
    assert "reserved by IoT Hub" in dialog.problem.text()
    dialog.properties.setCurrentCell(1, 0)
    dialog.remove_property.click()
    assert dialog.send_button.isEnabled()
    _set_property(dialog, 1, "", "")  # an empty row is no property
    assert dialog.send_button.isEnabled()


def test_ids_and_size_are_checked(dialog):
    dialog.message_id.setText("")
    assert "The message id is empty" in dialog.problem.text()
    assert not dialog.send_button.isEnabled()
    dialog.message_id.setText("m" * 129)
    assert "longer than 128 characters" in dialog.problem.text()
    dialog.message_id.setText("m-1")
    dialog.body_edit.setPlainText("x" * (MAX_MESSAGE_BYTES + 1))
    assert "IoT Hub takes at most 65,536 bytes (64 KB)" in dialog.problem.text()
    assert not dialog.send_button.isEnabled()


def test_send_hands_over_every_field_and_makes_a_new_id(dialog, handed):
    dialog.body_edit.setPlainText("hello")
    dialog.content_type.setCurrentText("text/plain")
    dialog.content_encoding.setText("utf-8")
    _set_property(dialog, 0, "room", "kitchen")
    dialog.message_id.setText("m-1")
    dialog.correlation_id.setText("c-1")
    dialog.ttl.setValue(30)
    dialog.ack.setCurrentIndex(dialog.ack.findData(Ack.POSITIVE))
    dialog.send_button.click()
    assert handed == [
        OutgoingMessage(
            "thermostat",
            body="hello",
            content_type="text/plain",
            content_encoding="utf-8",
            properties=(("room", "kitchen"),),
            message_id="m-1",
            ttl_seconds=30,
            ack=Ack.POSITIVE,
            correlation_id="c-1",
        )
    ]
    assert dialog.message_id.text() not in ("", "m-1")  # the next send is another message
    dialog.ttl.setValue(0)
    dialog.send_button.click()
    assert handed[-1].ttl_seconds is None  # the hub's default
    assert dialog.status.text() == "Sending…"


def test_the_action_is_for_devices_of_a_connected_hub(qtbot):
    window = QWidget()
    qtbot.addWidget(window)
    row: list[object] = [None]
    send = SendMessage(window, lambda: row[0], Outbox(lambda: None), report=lambda e: None)
    row[0] = DeviceRow("thermostat")
    send.update()
    assert not send.action.isEnabled()  # no hub yet
    send.set_service(object())
    assert send.action.isEnabled()
    row[0] = ModuleRow("thermostat", "sensor")
    send.update()
    assert not send.action.isEnabled() and send.action.toolTip() == NOT_FOR_MODULES
    row[0] = DeviceRow("thermostat", module_id="sensor")  # a module from a modules query
    send.update()
    assert not send.action.isEnabled()
    row[0] = DeviceRow("thermostat")
    send.update()
    assert send.action.isEnabled() and send.open() is not None


def test_why_feedback_cannot_come_is_shown_until_it_can(qtbot):
    outbox = Outbox(lambda: None)
    dialog = SendMessageDialog(outbox, "thermostat", lambda message: None)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.feedback_problem.isVisible()
    outbox.feedback_problem.set("No feedback for now: the hub could not be reached over AMQP.")
    assert dialog.feedback_problem.isVisible()
    assert dialog.feedback_problem.text().startswith("No feedback for now: the hub could not")
    outbox.feedback_problem.set(None)
    assert not dialog.feedback_problem.isVisible()
