"""The window's state without Qt: the app model's selection, hub session and watcher."""

from __future__ import annotations

import sys

import pytest

from tests.hubfixtures import service_for
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service import errors
from twin_explorer.service.app_model import AppModel, Selection
from twin_explorer.service.browse import DeviceRow, ModuleRow
from twin_explorer.service.session import HubSessionState


def test_selection_tells_every_choice_in_order_and_forwards_requests():
    selection = Selection()
    heard: list[tuple[str, object]] = []
    stop_first = selection.subscribe(lambda row: heard.append(("first", row)))
    selection.subscribe(lambda row: heard.append(("second", row)))
    asked: list[tuple[str, str | None]] = []
    selection.requests.subscribe(asked.append)
    assert selection.value is None and selection.identity is None

    device = DeviceRow("d1")
    selection.set(device)
    selection.set(DeviceRow("d1"))  # the same row chosen again is news too
    assert heard == [("first", device), ("second", device)] * 2
    stop_first()
    module = ModuleRow("d1", "m1")
    selection.set(module)
    assert heard[-1] == ("second", module) and len(heard) == 5
    assert selection.value is module and selection.identity == "d1/m1"

    selection.request("d2")
    selection.request("d1", "m1")
    assert asked == [("d2", None), ("d1", "m1")]
    assert selection.value is module  # a request is not a choice: the list answers it


def test_a_failing_listener_never_stops_the_others(monkeypatch):
    reported: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, _exc, _tb: reported.append(kind))
    selection = Selection()
    heard: list[object] = []

    def broken(_row: object) -> None:
        raise ValueError("a broken view")

    selection.subscribe(broken)
    selection.subscribe(heard.append)
    selection.set(DeviceRow("d1"))
    assert heard == [DeviceRow("d1")] and reported == [ValueError]


async def test_the_model_follows_the_hub_and_the_selection(hub_server: HubServer):
    hub_server.core.put_device("d1", {"status": "enabled"}, None)
    model = AppModel()
    services: list[object] = []
    statuses: list[tuple[str, bool]] = []
    model.session.service_changed.subscribe(services.append)
    model.session.status.subscribe(statuses.append)
    service = service_for(hub_server, sdk_retries=False)
    try:
        await model.session.use("Test hub", service)
        assert services == [service] and model.session.name == "Test hub"
        assert not model.session.is_local and model.session.local_info is None
        assert statuses[-1] == (f"Test hub ({service.host}) · 1 device", True)
        assert model.watcher.service is service

        model.selection.set(DeviceRow("d1"))
        assert model.watcher.watched() == ["d1"]
        model.selection.set(None)
        assert model.watcher.watched() == []
    finally:
        await model.aclose()
    assert services == [service, None] and model.session.service is None
    assert model.watcher.service is None


async def test_a_saved_connection_that_is_missing_is_said_in_plain_words():
    session = HubSessionState()
    statuses: list[tuple[str, bool]] = []
    session.status.subscribe(statuses.append)
    with pytest.raises(errors.ServiceError, match="Could not open the connection 'Nowhere'"):
        await session.open("Nowhere")
    assert statuses == [("Connecting to Nowhere…", True), ("Nowhere: not connected", False)]
    assert session.service is None and session.name is None
    await session.aclose()
