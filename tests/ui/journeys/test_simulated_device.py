"""Simulating a DEVICE: right-click it in the tree › Simulate, its tab says it is a
device; cloud-to-device messages the service sends show up in its Messages tab, where
the person rejects one and completes another and sees each state change; and a method
rule set in its panel answers a direct method invoked from the window."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QTreeWidget

from tests.c2d_service import ServiceC2D
from tests.ui.conftest import until
from tests.ui.journeys.test_demo import _found
from tests.ui.journeys.test_x509_module import GENERATE, no_errors

DEVICE = "myFirstDevice"


def _messages(sims) -> QTreeWidget:
    return next(v for v in sims.findChildren(QTreeWidget) if v.objectName() == "simMessages")


def _state_of(view: QTreeWidget, message_id: str) -> str:
    for i in range(view.topLevelItemCount()):
        item = view.topLevelItem(i)
        if item.text(0) == message_id:
            return item.text(view.columnCount() - 1)
    return ""


def test_simulate_a_device_settle_its_messages_and_answer_a_method(person, qrun, caplog):
    caplog.set_level(logging.WARNING)
    tree = person.window.tree_view

    async def journey():
        person.click_row(tree, DEVICE)
        await person.wait_to_see(f'"deviceId": "{DEVICE}"')
        await until(lambda: person.button("Simulate").isEnabled(), 10, "Simulate enabled")
        person.context_menu(tree, DEVICE, "Simulate")
        await until(lambda: _found(person.pane, "Simulated Modules"), 15, "the simulator pane")
        sims = person.pane("Simulated Modules")
        await until(lambda: person.sees("Connected", within=sims), 30, "the device connected")
        assert person.sees(f"{DEVICE} (device)", within=sims)  # the tab says what it is

        person.tab("Messages", within=sims)
        assert person.sees("Settle messages by hand (HTTPS)", within=sims)
        info = person.window.session.local_info  # the service side, as a back end would be
        sender = await ServiceC2D.open(info.amqp_port, info.ca_cert, info.service_connection_string)
        try:
            await sender.send(
                DEVICE,
                b'{"command": "open valve", "percent": 40}',
                message_id="journey-1",
                properties={"site": "north"},
                content_type="application/json",
            )
            view = _messages(sims)
            await until(lambda: _state_of(view, "journey-1"), 20, "the message in Messages")
            assert _state_of(view, "journey-1").startswith("pending")
            person.click_row(view, "journey-1")
            assert person.sees('"command": "open valve"', within=sims)  # pretty-printed
            assert person.sees("site: north", within=sims)
            person.click("Reject", within=sims)
            await until(lambda: _state_of(view, "journey-1") == "rejected", 15, "rejected")
            assert not person.button("Complete", within=sims).isEnabled()

            await sender.send(DEVICE, b"close valve", message_id="journey-2")
            await until(lambda: _state_of(view, "journey-2"), 20, "the second message")
            person.click_row(view, "journey-2")
            assert person.sees("Body (text, 11 bytes)", within=sims)
            person.click("Complete", within=sims)
            await until(lambda: _state_of(view, "journey-2") == "completed", 15, "completed")
        finally:
            await sender.close()

        # A method rule set in the device's panel answers a call from the window.
        person.tab("Methods", within=sims)
        person.type_into("method name", "openValve")
        person.type_into("answer payload", '{"opened": 40}')
        person.click("Set", within=sims)
        await person.wait_to_see('openValve: 200 {"opened":40}')
        person.click_row(tree, DEVICE)
        person.press("Ctrl+M")
        await until(lambda: _found(person.window_titled, "Direct Method"), 5, "the method dialog")
        dialog = person.window_titled("Direct Method")
        person.type_into("Method name", "openValve")
        person.click("Invoke", within=dialog)
        await until(lambda: person.sees("Status 200", within=dialog), 15, "the rule's answer")
        assert person.sees('"opened": 40', within=dialog)
        person.click("Close", within=dialog)

    qrun(journey(), timeout=120)
    no_errors(caplog)


def test_an_x509_device_made_in_the_app_settles_its_messages_with_its_certificate(
    person, qrun, caplog, secret_service_keyring, app_home
):
    caplog.set_level(logging.WARNING)
    tree = person.window.tree_view

    async def journey():
        person.menu("Hub", "New Device…")
        await until(lambda: _found(person.window_titled, "New Device"), 5, "the dialog")
        dialog = person.window_titled("New Device")
        person.type_into("device id", "certDevice")
        person.click(GENERATE, within=dialog)
        person.click("Create", within=dialog)
        await until(lambda: not dialog.isVisible(), 20, "the device created")
        await person.wait_to_see("certDevice")
        person.click_row(tree, "certDevice")
        await person.wait_to_see('"authenticationType": "selfSigned"')
        await until(lambda: person.button("Simulate").isEnabled(), 10, "Simulate enabled")
        person.context_menu(tree, "certDevice", "Simulate")
        await until(lambda: _found(person.pane, "Simulated Modules"), 15, "the simulator pane")
        sims = person.pane("Simulated Modules")
        await until(lambda: person.sees("Connected", within=sims), 30, "the device connected")
        assert person.sees("certDevice (device)", within=sims)

        person.tab("Messages", within=sims)
        info = person.window.session.local_info
        sender = await ServiceC2D.open(info.amqp_port, info.ca_cert, info.service_connection_string)
        try:
            await sender.send("certDevice", b"hello certificate", message_id="x509-1")
            view = _messages(sims)
            await until(lambda: _state_of(view, "x509-1"), 20, "the message in Messages")
            person.click_row(view, "x509-1")
            person.click("Complete", within=sims)
            await until(lambda: _state_of(view, "x509-1") == "completed", 15, "completed")
        finally:
            await sender.close()

    qrun(journey(), timeout=120)
    no_errors(caplog)
