"""Fixtures and helpers for the twin editor GUI tests (no tests here).

``hub`` is a real local hub (``HubServer``: REST, MQTT, CONNECT proxy, TLS, SQLite)
started in-process on the qasync loop. The service SDK runs on HubService's own threads
and the device SDK on its own (reference A.15), so the hub on the loop answers both.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hubfixtures import service_for
from tests.ui.conftest import finish, until
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.runtime.tls import ensure_certificates
from twin_explorer.service.hub import HubService
from twin_explorer.twin.events import PatchEvent
from twin_explorer.ui.main_window import MainWindow


@pytest.fixture(scope="session")
def hub_tls(tmp_path_factory) -> Path:
    """One CA and server certificate for every test's hub: key generation takes a while."""
    data_dir = tmp_path_factory.mktemp("hub-template")
    ensure_certificates(data_dir, ["localhost", "127.0.0.1"])
    return data_dir / "tls"


@pytest.fixture
def hub(qloop, tmp_path, hub_tls) -> Iterator[HubServer]:
    data_dir = tmp_path / "hub"
    shutil.copytree(hub_tls, data_dir / "tls")
    server = HubServer(data_dir, rest_port=0, mqtt_port=0, proxy_port=0)
    finish(qloop, server.start(), 60, "starting the hub")
    yield server
    finish(qloop, server.close(), 60, "stopping the hub")


async def report(hub: HubServer, service: HubService, module: tuple[str, str], patch: dict) -> None:
    """Report properties as the module itself: the unmodified device SDK over MQTT, through
    the hub's CONNECT proxy (the SDK always dials port 8883, reference A.1)."""
    from azure.iot.device import ProxyOptions
    from azure.iot.device.aio import IoTHubModuleClient

    identity = await service.get_module(*module)
    client = IoTHubModuleClient.create_from_connection_string(
        service.connection_string(identity),
        server_verification_cert=hub.certificates.ca_cert.read_text(),
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", hub.proxy_port),
    )
    try:
        await client.connect()
        await client.patch_twin_reported_properties(patch)
    finally:
        await client.shutdown()


@pytest.fixture
def window(qtbot, qloop, hub) -> MainWindow:
    def before_close(window: MainWindow) -> None:
        # pytest-qt closes and deletes the window before fixtures end: shut down first,
        # and let the window close without asking about an edit left unsaved.
        if window.editor.session is not None:
            window.editor.discard()
        finish(qloop, window.shutdown(), 60, "closing the window")

    window = MainWindow()
    qtbot.addWidget(window, before_close_func=before_close)
    window.show()
    return window


@pytest.fixture
def sent(window) -> list[PatchEvent]:
    """Every patch event on the window's stream."""
    events: list[PatchEvent] = []
    window.patches.subscribe(events.append)
    return events


async def connect(window: MainWindow, hub: HubServer) -> HubService:
    """Attach the window to ``hub``; returns a second service: 'someone else'."""
    await window.session.use("Local hub", service_for(hub))
    return service_for(hub)


START = {"tags": {"site": "lab"}, "properties": {"desired": {"fan": {"speed": 1}, "led": "off"}}}


async def opened(window: MainWindow, hub: HubServer, body: dict | None = None) -> HubService:
    """Connect to ``hub``, create device d1 with ``body`` patched in, open its twin in the
    editor; returns a second service: 'someone else'."""
    other = await connect(window, hub)
    await other.create_device("d1")
    if body:
        await other.patch_twin("d1", None, body, None)
    await open_twin(window, "d1")
    return other


async def open_twin(window: MainWindow, device_id: str, module_id: str | None = None) -> None:
    editor = window.editor
    task = editor.open_twin(device_id, module_id)
    assert task is not None
    await task
    await until(lambda: editor.session is not None, what="the twin to load")


async def idle(window: MainWindow) -> None:
    await until(lambda: not window.editor._busy, what="the editor to finish")


def edit(window: MainWindow, change) -> str:
    """Change the editor's document as a user would, through the text; returns the text."""
    editor = window.editor
    doc = json.loads(editor.text_view.toPlainText())
    change(doc)
    text = json.dumps(doc, indent=2)
    editor.text_view.setPlainText(text)
    editor.validate_now()
    return text


def desired(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["properties"]["desired"]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)
