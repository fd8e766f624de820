"""Sending a cloud-to-device message: right-click a demo device, Send Message to
Device…, type a JSON body and a property, Send; a real device client (azure-iot-device
over MQTT, started by the test) receives it and completes it, and the dialog shows the
hub's feedback in words. Modules are not offered the item."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path

from azure.iot.device import ProxyOptions
from azure.iot.device.aio import IoTHubDeviceClient
from PySide6.QtCore import Qt

from tests.ui.conftest import until
from tests.ui.journeys.test_demo import _found
from tests.ui.person import Blocked
from twin_explorer.service.hub import HubService

DEVICE = "myFirstDevice"
MODULE = "myFirstModule"
ITEM = "Send Message to Device…"
SHOWN = "Send Message to Device"  # as a menu lists it (without the ellipsis)


class Received:
    """What the device client got (its handler runs on the SDK's threads)."""

    def __init__(self) -> None:
        self.messages: list = []
        self._lock = threading.Lock()

    def __call__(self, message) -> None:
        with self._lock:
            self.messages.append(message)


def test_send_a_message_a_device_completes_and_see_the_feedback(person, qrun, caplog):
    caplog.set_level(logging.WARNING)
    info = person.window.model.session.local_info  # the demo hub, as a device's maker has it
    other = HubService(info.service_connection_string, ca_cert=info.ca_cert, use_env_proxies=False)
    tree = person.window.tree_view
    received = Received()
    device: IoTHubDeviceClient | None = None

    async def journey():
        nonlocal device
        identity = await other.get_device(DEVICE)
        device = IoTHubDeviceClient.create_from_connection_string(
            other.connection_string(identity, "primary"),
            server_verification_cert=await asyncio.to_thread(Path(info.ca_cert).read_text),
            proxy_options=ProxyOptions("HTTP", "127.0.0.1", info.proxy_port),
        )
        await device.connect()
        await asyncio.to_thread(setattr, device, "on_message_received", received)

        # Modules cannot take C2D messages: the item is there, disabled.
        person.click_row(tree, DEVICE)
        person.press(Qt.Key.Key_Right, to=tree)
        await person.wait_to_see(MODULE)
        person.right_click_row(tree, MODULE)
        await until(lambda: SHOWN in person.popup_items(), 5, "the context menu")
        try:
            person.popup(ITEM)
            raise AssertionError("a module was offered Send Message to Device…")
        except Blocked:
            pass
        person.press(Qt.Key.Key_Escape, to=_open_popup())

        person.right_click_row(tree, DEVICE)
        await until(lambda: SHOWN in person.popup_items(), 5, "the context menu")
        person.popup(ITEM)
        await until(lambda: _found(person.window_titled, "Send Message to Device"), 5, "dialog")
        dialog = person.window_titled("Send Message to Device")
        assert DEVICE in dialog.windowTitle()

        person.choose("Content type", "application/json")
        person.type_into("Body", '{"light": ')
        await until(lambda: person.sees("The body is not valid JSON", within=dialog), 5, "check")
        assert not person.button("Send", within=dialog).isEnabled()
        person.type_into("Body", '{"light": "on"}')
        await until(lambda: person.button("Send", within=dialog).isEnabled(), 5, "Send enabled")
        await person.in_front()
        person.click("Add Property", within=dialog)
        person.type_here("room")
        person.press(Qt.Key.Key_Tab)
        person.type_here("kitchen")
        person.press(Qt.Key.Key_Return)
        person.click("Send", within=dialog)

        await until(lambda: person.sees("Sent (message id", within=dialog), 20, "sent")
        await until(lambda: received.messages, 20, "the device received it")
        await until(
            lambda: person.sees("The device completed the message at", within=dialog),
            30,
            "the feedback",
        )
        [message] = received.messages
        assert json.loads(message.data) == {"light": "on"}
        assert message.custom_properties["room"] == "kitchen"
        assert message.content_type == "application/json"
        assert person.sees(message.message_id, within=dialog)  # in the list of sent messages
        person.click("Close", within=dialog)

    try:
        qrun(journey(), timeout=120)
    finally:
        if device is not None:
            qrun(device.shutdown(), timeout=30)
        qrun(other.aclose(), timeout=30)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _open_popup():
    from PySide6.QtWidgets import QApplication

    return QApplication.activePopupWidget()
