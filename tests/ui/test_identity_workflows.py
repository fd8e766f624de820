"""Identity workflows through the real window: a module's connection string, used by a
real SDK module client, and a direct method answered by it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from azure.iot.device import MethodResponse, ProxyOptions
from azure.iot.device.aio import IoTHubModuleClient
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit

from tests.ui.conftest import until
from tests.ui.hubwindow import open_window, service_for
from twin_explorer.service.browse import ModuleRow


def _select_module(window, device_id: str, module_id: str) -> None:
    model = window.tree_pane.model
    for r in range(model.rowCount()):
        device_index = model.index(r, 0)
        if device_index.data() == device_id:
            for m in range(model.rowCount(device_index)):
                index = model.index(m, 0, device_index)
                if index.data() == module_id:
                    window.tree_pane.view.setCurrentIndex(index)
                    return
    raise AssertionError(f"{device_id}/{module_id} is not in the tree")


def test_module_connection_string_connects_and_answers_a_method(qtbot, qrun, local_hub):
    window = open_window(qtbot)
    model = window.tree_pane.model
    ca_pem = Path(local_hub.ca_cert).read_text()

    async def scenario():
        service = service_for(local_hub)
        await service.create_device("sensor-1")
        await service.create_module("sensor-1", "thermo")
        await window.session.use("Local", service)
        await until(lambda: model.rowCount() == 1, what="the device row")
        device_index = model.index(0, 0)
        window.tree_pane.view.expand(device_index)
        await until(lambda: model.index(0, 0, device_index).data() == "thermo", what="module")
        _select_module(window, "sensor-1", "thermo")
        assert isinstance(window.tree_pane.current_row(), ModuleRow)

        # The connection string is masked until asked for, then copied.
        window.identity.copy_primary.trigger()
        await until(lambda: getattr(window.identity, "last_string_dialog", None), what="dialog")
        dialog = window.identity.last_string_dialog
        field = dialog.findChild(QLineEdit, "identityConnectionString")
        assert field.echoMode() == QLineEdit.EchoMode.Password
        dialog.reveal.setChecked(True)
        assert field.echoMode() == QLineEdit.EchoMode.Normal
        dialog.copy_button.click()
        copied = QGuiApplication.clipboard().text()
        assert copied.startswith("HostName=localhost;DeviceId=sensor-1;ModuleId=thermo;")
        dialog.reject()

        # A real SDK module client connects with exactly that string.
        client = IoTHubModuleClient.create_from_connection_string(
            copied,
            server_verification_cert=ca_pem,
            proxy_options=ProxyOptions("HTTP", "127.0.0.1", local_hub.proxy_port),
            connection_retry=False,
        )
        loop = asyncio.get_running_loop()
        requests: list[str] = []

        async def on_method(request):
            loop.call_soon_threadsafe(requests.append, request.name)
            await client.send_method_response(
                MethodResponse.create_from_method_request(request, 201, {"rebooted": True})
            )

        await client.connect()
        # Handler setters block until SUBSCRIBE completes: keep them off the UI thread.
        await asyncio.to_thread(setattr, client, "on_method_request_received", on_method)
        try:
            window.tree_pane.reload()
            await until(lambda: model.rowCount() == 1)
            device_index = model.index(0, 0)
            window.tree_pane.view.expand(device_index)
            await until(lambda: model.index(0, 0, device_index).data() == "thermo")
            # The refresh reads the rows in place: wait for it to land.
            await until(lambda: model.index(0, 2, device_index).data() == "Connected")
            _select_module(window, "sensor-1", "thermo")

            methods = window.identity.invoke_method()
            methods.name_edit.setText("reboot")
            methods.payload_edit.setPlainText('{"delay": 0}')
            assert methods.invoke_button.isEnabled()
            methods.invoke_button.click()
            await until(lambda: methods.status.text().startswith("Status"), what="the answer")
            assert methods.status.text() == "Status 201"
            assert json.loads(methods.response.toPlainText()) == {"rebooted": True}
            assert requests == ["reboot"]

            # Bad JSON is refused where it was typed.
            methods.payload_edit.setPlainText("{nope")
            assert not methods.invoke_button.isEnabled()
            assert "line 1" in methods.payload_error.text()
            methods.reject()
        finally:
            await client.shutdown()

    qrun(scenario(), timeout=90)


def test_method_on_an_offline_module_says_so(qtbot, qrun, local_hub):
    window = open_window(qtbot)

    async def scenario():
        service = service_for(local_hub)
        await service.create_device("quiet")
        await service.create_module("quiet", "m")
        await window.session.use("Local", service)
        await until(lambda: window.tree_pane.model.rowCount() == 1)
        window.tree_pane.view.setCurrentIndex(window.tree_pane.model.index(0, 0))
        dialog = window.identity.invoke_method()
        dialog.name_edit.setText("ping")
        dialog.invoke_button.click()
        await until(lambda: "not connected" in dialog.status.text(), what="offline message")
        assert "quiet" in dialog.status.text()
        dialog.reject()

    qrun(scenario())
