"""Simulated modules in the window, against a real local hub (pytest-qt on qasync)."""

from __future__ import annotations

import asyncio
import json
import logging

from PySide6.QtCore import QModelIndex, Qt

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubInfo, default_data_dir
from twin_explorer.simulator import Behaviour, Status
from twin_explorer.simulator.behaviour import STAMP_KEY
from twin_explorer.twin.events import Direction, Section
from twin_explorer.ui.chrome.method_dialog import MethodDialog
from twin_explorer.ui.main_window import MainWindow
from twin_explorer.ui.panes.simulators import SimulatorPanel, session_transport
from twin_explorer.ui.panes.simulators.telemetry_list import (
    CONTENT,
    PROPERTIES,
    MessageListModel,
    SentMessage,
)


def _window(qtbot) -> MainWindow:
    return open_window(qtbot)


async def _open_hub(window: MainWindow, hub) -> HubService:
    service = service_for(hub)
    window.session.local_info = LocalHubInfo.from_json(hub.info)  # as _open_local sets it
    await window.session.use("Local hub", service)
    return service


def _select_module(window: MainWindow, device_id: str) -> None:
    model = window.tree_pane.model
    device = next(
        model.index(r, 0)
        for r in range(model.rowCount())
        if model.row_at(model.index(r, 0)).device_id == device_id
    )
    window.tree_view.setCurrentIndex(model.index(0, 0, device))


def _device_index(window: MainWindow, device_id: str) -> QModelIndex | None:
    model = window.tree_pane.model
    for r in range(model.rowCount()):
        if model.row_at(model.index(r, 0)).device_id == device_id:
            return model.index(r, 0)
    return None


async def _connected(window: MainWindow, identity: str) -> SimulatorPanel:
    await until(
        lambda: (
            (p := window.simulators.panel_for(identity)) is not None
            and p.module.status is Status.CONNECTED
        ),
        30,
        f"{identity} connected",
    )
    return window.simulators.panel_for(identity)


def test_simulate_from_the_tree_shows_connected_and_reacts(qtbot, qrun, local_hub):
    window = _window(qtbot)
    logged = []
    window.patches.subscribe(logged.append)

    async def scenario() -> None:
        service = service_for(local_hub)
        await service.create_device("ui-dev")
        await service.create_module("ui-dev", "ui-mod")
        await service.aclose()
        service = await _open_hub(window, local_hub)

        await until(lambda: _device_index(window, "ui-dev") is not None, 15, "the device row")
        window.tree_view.expand(_device_index(window, "ui-dev"))
        model = window.tree_pane.model
        await until(
            lambda: model.row_at(model.index(0, 0, _device_index(window, "ui-dev"))) is not None,
            15,
            "the module row",
        )
        _select_module(window, "ui-dev")
        assert window.simulators.simulate_action.isEnabled()
        window.simulators.simulate_action.trigger()

        panel = await _connected(window, "ui-dev/ui-mod")
        assert window.simulators.isVisible()
        assert panel.status_text.startswith("Connected")
        assert panel.history.count() >= 3  # connecting, syncing..., connected

        await service.patch_twin(
            "ui-dev", "ui-mod", {"properties": {"desired": {"color": "red"}}}, None
        )
        await until(lambda: panel.desired.count() == 1, 15, "the desired patch in the panel")
        assert '{"color":"red"}' in panel.desired.item(0).text()
        await until(
            lambda: json.loads(panel.twin_view.toPlainText())["reported"].get("color") == "red",
            15,
            "the echo in the twin view",
        )
        reported = (await service.get_twin("ui-dev", "ui-mod")).doc["properties"]["reported"]
        assert reported["color"] == "red"
        directions = [(e.direction, e.identity) for e in logged]
        assert (Direction.RECEIVED, "ui-dev/ui-mod") in directions
        assert (Direction.REPORTED, "ui-dev/ui-mod") in directions

        # A reported patch by hand, validated before it can be sent.
        panel.reported.editor.setPlainText('{"bad.key": 1}')
        assert not panel.reported.send_button.isEnabled()
        assert "bad.key" in panel.reported.problem.text()
        panel.reported.editor.setPlainText('{"note": "by hand"}')
        assert panel.reported.send_button.isEnabled()
        panel.reported.send_button.click()
        await until(lambda: panel.reported.result.text() == "Sent.", 15, "the manual report")
        reported = (await service.get_twin("ui-dev", "ui-mod")).doc["properties"]["reported"]
        assert reported["note"] == "by hand"

        await window.shutdown()
        assert panel.module.status is Status.CLOSED

    qrun(scenario(), timeout=90)


def test_pasted_module_answers_an_asked_method_and_sends_telemetry(qtbot, qrun, local_hub):
    window = _window(qtbot)

    async def scenario() -> None:
        service = await _open_hub(window, local_hub)
        await service.create_device("paste-dev")
        first = await service.create_module("paste-dev", "a")
        second = await service.create_module("paste-dev", "b")

        # Two modules of one device at once: one pasted, one opened directly.
        dialog = window.simulators.show_string_dialog()
        assert dialog.use_local.isChecked()  # the open local hub's CA and proxy
        dialog.string_edit.setText("HostName=h;SharedAccessKeyName=x;SharedAccessKey=eA==")
        dialog.accept()
        assert "hub connection string" in dialog.problem.text()
        dialog.string_edit.setText(service.connection_string(first))
        dialog.accept()
        a = await _connected(window, "paste-dev/a")
        await window.simulators.open_module(
            service.connection_string(second), window.simulators.local_transport()
        )
        b = await _connected(window, "paste-dev/b")
        assert window.simulators.tabs.count() == 2

        # A method the user answers from the panel, before its countdown ends.
        a.methods.name.setText("confirm")
        a.methods.mode.setCurrentIndex(1)  # ask me
        assert a.methods.save_rule()
        call = asyncio.ensure_future(service.invoke_method("paste-dev", "a", "confirm", {"n": 1}))
        await until(lambda: len(a.methods.prompts) == 1, 15, "the method prompt")
        prompt = next(iter(a.methods.prompts.values()))
        assert "answer within" in prompt.countdown.text()
        prompt.status.setValue(202)
        prompt.payload.setText('{"confirmed": true}')
        prompt.answer()
        result = await call
        assert (result.status, result.payload) == (202, {"confirmed": True})
        await until(lambda: not a.methods.prompts, 15, "the prompt to go")
        assert "202" in a.methods.history.item(0).text()

        # One telemetry message from the template.
        b.telemetry.send_button.click()
        await until(lambda: b.telemetry.counts.text() == "Sent 1, failed 0", 15, "telemetry")

        # Closing one panel leaves the other connected.
        window.simulators.close_panel(a)
        await until(lambda: a.module.status is Status.CLOSED, 15, "module a closed")
        assert window.simulators.tabs.count() == 1
        assert b.module.status is Status.CONNECTED

        await window.shutdown()
        assert b.module.status is Status.CLOSED

    qrun(scenario(), timeout=90)


CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class _Session:
    def __init__(self, *, is_local=False, local_info=None, service=None) -> None:
        self.is_local, self.local_info, self.service = is_local, local_info, service


def test_how_panels_reach_the_hub(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text(CA)
    info = {
        "hostname": "localhost",
        "service_connection_string": "HostName=localhost:1;SharedAccessKeyName=o;"
        "SharedAccessKey=eA==",
        "ca_cert": str(ca),
        "rest_port": 1,
        "mqtt_port": 40000,
        "proxy_port": 40001,
        "data_dir": str(tmp_path),
    }
    local = session_transport(_Session(is_local=True, local_info=LocalHubInfo.from_json(info)))
    assert (local.ca_pem, local.proxy) == (CA, ("127.0.0.1", 40001))
    assert local.https_port == 1  # C2D settled by hand: the hub's REST port

    loopback = HubService("HostName=localhost:8443;SharedAccessKeyName=o;SharedAccessKey=eA==")
    assert session_transport(_Session(service=loopback)) is None  # no local hub CA yet
    (default_data_dir() / "tls").mkdir(parents=True)
    (default_data_dir() / "tls" / "ca.pem").write_text(CA)
    direct = session_transport(_Session(service=loopback))
    assert (direct.ca_pem, direct.proxy) == (CA, None)
    assert direct.https_port == 8443

    azure = HubService("HostName=x.azure-devices.net;SharedAccessKeyName=o;SharedAccessKey=eA==")
    assert session_transport(_Session(service=azure)) is None


async def _simulate_new_module(window: MainWindow, service: HubService, device: str):
    await service.create_device(device)
    module = await service.create_module(device, "m")
    await window.simulators.open_module(
        service.connection_string(module), window.simulators.local_transport()
    )
    return await _connected(window, f"{device}/m")


def test_answers_and_behaviour_chosen_in_the_panel_reach_the_module(qtbot, qrun, local_hub):
    window = _window(qtbot)
    logged = []
    window.patches.subscribe(logged.append)

    async def scenario() -> None:
        service = await _open_hub(window, local_hub)
        panel = await _simulate_new_module(window, service, "seam-dev")
        methods = panel.methods

        # Switching to "Ask me" and back gives the answer's status and payload back.
        methods.mode.setCurrentIndex(1)
        assert not methods.status.isEnabled()
        methods.mode.setCurrentIndex(0)
        assert methods.status.isEnabled() and methods.payload.isEnabled()

        # A fixed answer set with the panel's controls answers at once.
        methods.name.setText("reboot")
        methods.payload.setText('{"ok": true}')
        methods.save_button.click()
        assert methods.rules.item(0).text() == 'reboot: 200 {"ok":true}'
        result = await service.invoke_method("seam-dev", "m", "reboot", {}, response_timeout=5)
        assert (result.status, result.payload) == (200, {"ok": True})
        await until(lambda: methods.history.count() == 1, 5, "the request listed")
        calls = [e for e in logged if e.section is Section.METHOD]
        assert [(e.direction, e.body["answeredBy"], e.body["status"]) for e in calls] == [
            (Direction.RECEIVED, "rule", 200)
        ]

        # The behaviour picked in the panel is the one that answers desired patches.
        combo = panel.reported.behaviour
        combo.setCurrentIndex(combo.findText("Stamp", Qt.MatchFlag.MatchStartsWith))
        assert panel.module.behaviour is Behaviour.STAMP
        await service.patch_twin("seam-dev", "m", {"properties": {"desired": {"x": 1}}}, None)
        await until(lambda: STAMP_KEY in panel.module.twin["reported"], 15, "the stamp in reported")
        # The header follows the twin, not the version said when it connected.
        desired = (await service.get_twin("seam-dev", "m")).doc["properties"]["desired"]
        await until(
            lambda: f"desired $version {desired['$version']} ·" in panel.status_text,
            10,
            "the header's desired $version",
        )

        # Each telemetry message sent is listed, newest first, with what it carries.
        telemetry = panel.telemetry
        telemetry.send_button.click()
        await until(lambda: telemetry.messages.rowCount() == 1, 15, "the message listed")
        telemetry.send_button.click()
        await until(lambda: telemetry.messages.rowCount() == 2, 15, "two messages listed")
        newest = telemetry.messages.message(0)
        assert '"count": 2' in newest.body and newest.failure is None
        assert newest.cell(CONTENT) == "application/json; utf-8"

    qrun(scenario(), timeout=90)


def test_the_message_list_keeps_the_newest_up_to_its_limit(qtbot):
    model = MessageListModel(limit=3)
    for n in range(5):
        model.add(SentMessage(f"2026-01-01T00:00:0{n}Z", f'{{"n": {n}}}', {"k": "v"}, "t", "e"))
    assert [model.message(r).body for r in range(model.rowCount())] == [
        '{"n": 4}',
        '{"n": 3}',
        '{"n": 2}',
    ]
    assert model.data(model.index(0, PROPERTIES)) == '{"k":"v"}'


def test_a_method_dialog_closed_mid_call_keeps_the_call(qtbot, qrun, local_hub, caplog):
    caplog.set_level(logging.WARNING)
    window = _window(qtbot)
    logged = []
    window.patches.subscribe(logged.append)

    async def scenario() -> None:
        service = await _open_hub(window, local_hub)
        panel = await _simulate_new_module(window, service, "dlg-dev")
        panel.methods.name.setText("confirm")
        panel.methods.mode.setCurrentIndex(1)  # ask me
        assert panel.methods.save_rule()

        dialog = MethodDialog(
            service, "dlg-dev", "m", parent=window, calls=window.identity.method_calls
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        assert not dialog.isModal()
        dialog.name_edit.setText("confirm")
        dialog.invoke()
        await until(lambda: len(panel.methods.prompts) == 1, 15, "the prompt")
        dialog.close()
        await asyncio.sleep(0)  # the dialog is deleted on the next turn of the loop
        prompt = next(iter(panel.methods.prompts.values()))
        prompt.status.setValue(202)
        prompt.answer()

        def sent() -> list:
            return [e for e in logged if e.section is Section.METHOD and e.direction == "sent"]

        await until(sent, 15, "the call's answer in the patch stream")
        assert sent()[0].body["status"] == 202
        assert sent()[0].body["answeredBy"] == "module"

    qrun(scenario(), timeout=90)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
