"""The device tree against a real local hub: pages, filter, query, identities."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from azure.iot.device import ProxyOptions
from azure.iot.device.aio import IoTHubModuleClient
from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QMessageBox, QPushButton

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk
from twin_explorer.service.browse import DeviceRow
from twin_explorer.ui.panes.tree.device_tree_model import DeviceTreeModel
from twin_explorer.ui.panes.tree.tree_pane import CONNECTION_POLL_MS


@pytest.fixture
def big_hub(start_local_hub):
    """A hub with 250 devices (one module each): more than two pages of 100."""
    hub = start_local_hub("big")
    hub.stop()
    with HubCore.open(hub.data_dir) as core:
        seed_bulk(core, 250, 1)
    hub.start()
    return hub


def _labels(model: DeviceTreeModel) -> list[str]:
    return [model.index(r, 0).data() for r in range(model.rowCount())]


def test_tree_pages_through_a_hub_larger_than_a_page(qtbot, qrun, big_hub):
    window = open_window(qtbot)
    tree = window.tree_pane
    model = tree.model

    async def scenario():
        await window.session.use("Big hub", service_for(big_hub))
        await until(lambda: model.rowCount() == 100, what="the first page")
        assert "more as you scroll" in tree.summary.text()
        assert _labels(model)[:2] == ["device-000000", "device-000001"]
        # Scrolling to the end asks for the next page, twice; nothing else does. (The view
        # asks its model for more after every layout: honoured, that read the hub page
        # after page by itself, and a slow test missed the 200-row moment.)
        for expected in (200, 250):
            tree.view.scrollToBottom()
            await until(lambda e=expected: model.rowCount() == e, what=f"{expected} rows")
            await until(lambda: not model.loading, what="the page settled")
            tree.rows_in_sight()  # lays the view out now, as the next paint would
            assert model.rowCount() == expected and not model.loading
        await until(lambda: not model.loading)
        assert not model.canFetchMore(QModelIndex())
        assert tree.summary.text() == "250 devices"
        assert len(set(_labels(model))) == 250

    qrun(scenario())


def test_model_stays_consistent_while_pages_and_modules_arrive(
    qtbot, qrun, start_local_hub, qtmodeltester
):
    hub = start_local_hub("small")
    hub.stop()
    with HubCore.open(hub.data_dir) as core:
        seed_bulk(core, 25, 2)
    hub.start()
    window = open_window(qtbot)
    tree = window.tree_pane
    tree.page_size = 10
    model = tree.model
    # The tester stays attached: every insert below is checked as it happens.
    qtmodeltester.check(model)

    async def scenario():
        await window.session.use("Small hub", service_for(hub))
        await until(lambda: model.rowCount() >= 10, what="the first page")
        first = model.index(0, 0)
        tree.view.expand(first)
        await until(lambda: model.rowCount(first) == 2, what="the module rows")
        assert [model.index(r, 0, first).data() for r in range(2)] == ["module-0", "module-1"]
        assert model.index(0, 2, first).data() == "Disconnected"
        while model.canFetchMore(QModelIndex()) or model.loading:
            tree.view.scrollToBottom()
            await asyncio.sleep(0.02)
        assert model.rowCount() == 25

    qrun(scenario())


def test_filter_and_query_run_on_the_hub(qtbot, qrun, big_hub):
    window = open_window(qtbot)
    tree = window.tree_pane
    model = tree.model

    async def scenario():
        await window.session.use("Big hub", service_for(big_hub))
        await until(lambda: model.rowCount() == 100)
        tree.filter_edit.setText("00024")  # device-000024 and device-000240 … 249
        await until(lambda: model.rowCount() == 11 and not model.loading, what="filtered rows")
        assert all("00024" in label for label in _labels(model))
        tree.filter_edit.clear()
        await until(lambda: model.rowCount() == 100, what="all devices again")

        tree.query_edit.setText("SELECT * FROM devices WHERE tags.site = 'site-3'")
        tree.query_edit.returnPressed.emit()
        await until(lambda: model.rowCount() == 25 and not model.loading, what="query rows")
        rows = [model.index(r, 0).data(model.RowRole) for r in range(model.rowCount())]
        assert all(row.twin["tags"]["site"] == "site-3" for row in rows)

        tree.query_edit.setText("SELECT * FROM devices WHERE")
        tree.query_edit.returnPressed.emit()
        # Said at the query box, where it was typed; loading ends with it.
        await until(lambda: tree.query_error.isVisible(), what="the query error")
        assert "query" in tree.query_error.text().lower() and not model.loading
        assert "column 28" in tree.query_error.text()  # the hub's own words
        # A refused query is not asked again by itself (the view asks after every layout).
        assert not model.canFetchMore(QModelIndex()) and not model.fetch_next_page()
        assert "the query did not run" in tree.summary.text() and not tree.busy.isVisible()
        assert not window.notice.text()  # said where it was typed, not window-wide
        tree.query_edit.clear()
        await until(lambda: model.rowCount() == 100, what="all devices after clearing")
        assert not tree.query_error.isVisible()

    qrun(scenario())


def test_create_and_delete_devices_from_the_window(qtbot, qrun, local_hub):
    window = open_window(qtbot)
    model = window.tree_pane.model

    async def scenario():
        service = service_for(local_hub)
        await window.session.use("Local", service)
        await until(lambda: not model.loading)
        for name in ("lab-a", "lab-b"):
            dialog = window.identity.create_device()
            dialog.id_field.edit.setText(name)
            assert dialog.create_button.isEnabled()
            dialog.create_button.click()
            await until(lambda d=dialog: d.created is not None, what=f"{name} created")
        await until(lambda: {"lab-a", "lab-b"} <= set(_labels(model)), what="new rows")

        # Bad input is refused where it was typed, and nothing is sent.
        dialog = window.identity.create_device()
        dialog.id_field.edit.setText("bad id with spaces")
        assert not dialog.create_button.isEnabled()
        assert "not ' '" in dialog.id_field.error.text()
        dialog.reject()

        # A second create of the same id: the hub says 409, the dialog says so in words.
        dialog = window.identity.create_device()
        dialog.id_field.edit.setText("lab-a")
        dialog.create_button.click()
        await until(lambda: dialog.result.text(), what="the conflict message")
        assert "already exists" in dialog.result.text()
        dialog.reject()

        # Select both and delete, confirming in the box.
        view = window.tree_pane.view
        selection = view.selectionModel()
        view.setCurrentIndex(model.index(_labels(model).index("lab-a"), 0))
        for row, label in enumerate(_labels(model)):
            if label in ("lab-a", "lab-b"):
                selection.select(
                    model.index(row, 0),
                    selection.SelectionFlag.Select | selection.SelectionFlag.Rows,
                )
        window.identity.delete_selected()
        box = window.findChild(QMessageBox, "confirmBox")
        assert "lab-a" in box.text() and "lab-b" in box.text()
        next(b for b in box.findChildren(QPushButton) if b.text() == "Delete").click()
        await until(lambda: not {"lab-a", "lab-b"} & set(_labels(model)), what="rows gone")
        with pytest.raises(Exception, match="not found"):
            await service.get_device("lab-a")

    qrun(scenario())


def test_disable_and_enable_a_device(qtbot, qrun, local_hub):
    window = open_window(qtbot)
    model = window.tree_pane.model

    async def scenario():
        service = service_for(local_hub)
        await service.create_device("toggle-me")
        await window.session.use("Local", service)
        await until(lambda: "toggle-me" in _labels(model))
        row = _labels(model).index("toggle-me")
        window.tree_pane.view.setCurrentIndex(model.index(row, 0))
        assert window.identity.disable.isEnabled()
        window.identity.disable.trigger()
        await until(lambda: _status(model, "toggle-me") == "disabled", what="disabled")
        assert (await service.get_device("toggle-me")).status == "disabled"
        window.tree_pane.view.setCurrentIndex(model.index(_labels(model).index("toggle-me"), 0))
        window.identity.enable.trigger()
        await until(lambda: _status(model, "toggle-me") == "enabled", what="enabled")

    qrun(scenario())


def _status(model: DeviceTreeModel, label: str) -> str | None:
    for r in range(model.rowCount()):
        row = model.index(r, 0).data(model.RowRole)
        if isinstance(row, DeviceRow) and row.label == label:
            return row.status
    return None


def test_hub_that_goes_away_is_reported_in_plain_words(qtbot, qrun, local_hub):
    window = open_window(qtbot)

    async def scenario():
        service = service_for(local_hub)
        await window.session.use("Local", service)
        await until(lambda: "reachable" in window.connection_status.text())
        await until(lambda: not window.tree_pane.model.loading, what="the first page")
        local_hub.stop()
        window.tree_pane.reload()
        await until(lambda: "unreachable" in window.notice.text(), within=30, what="the error")
        assert "Traceback" not in window.notice.text()

    qrun(scenario())


def test_refresh_keeps_expansion_selection_and_scroll(qtbot, qrun, big_hub):
    window = open_window(qtbot)
    tree = window.tree_pane
    model, view = tree.model, tree.view

    async def scenario():
        service = service_for(big_hub)
        await window.session.use("Big hub", service)
        await until(lambda: model.rowCount() == 100, what="the first page")
        view.scrollToBottom()
        await until(lambda: model.rowCount() == 200 and not model.loading, what="two pages")
        device = model.index(_labels(model).index("device-000150"), 0)
        view.expand(device)
        await until(lambda: model.index(0, 0, device).data() == "module-0", what="its module")
        view.setCurrentIndex(model.index(0, 0, device))
        view.scrollTo(device)
        scrolled = view.verticalScrollBar().value()
        assert scrolled > 0
        # Someone else changes the hub: a new device in the rows shown, one deleted.
        await service.create_device("device-000150a")
        await service.delete_device("device-000010")
        tree.reload()  # Refresh
        await until(lambda: "device-000150a" in _labels(model), what="the new device")
        await until(lambda: not model.loading, what="the refresh")
        assert "device-000010" not in _labels(model) and model.rowCount() == 200
        device = model.index(_labels(model).index("device-000150"), 0)
        assert view.isExpanded(device)
        assert tree.current_row().label == "device-000150/module-0"
        assert abs(view.verticalScrollBar().value() - scrolled) <= 1  # one row went above
        # The status bar's count follows (it is read again on Refresh).
        await until(lambda: "250 devices" in window.hub_status.text(), what="the count")

    qrun(scenario())


def test_rows_in_sight_follow_their_connection_state(qtbot, qrun, big_hub):
    window = open_window(qtbot)
    tree = window.tree_pane
    model = tree.model
    ca_pem = Path(big_hub.ca_cert).read_text()

    async def scenario():
        service = service_for(big_hub)
        await window.session.use("Big hub", service)
        await until(lambda: model.rowCount() == 100, what="the first page")
        device = model.index(1, 0)
        tree.view.expand(device)
        await until(lambda: model.index(0, 0, device).data() == "module-0", what="its module")
        assert model.index(0, 2, device).data() == "Disconnected"
        identity = await service.get_module("device-000001", "module-0")
        client = IoTHubModuleClient.create_from_connection_string(
            service.connection_string(identity),
            server_verification_cert=ca_pem,
            proxy_options=ProxyOptions("HTTP", "127.0.0.1", big_hub.proxy_port),
            connection_retry=False,
        )
        await client.connect()
        try:
            # No refresh, no click: the timer re-reads the rows in sight.
            await until(
                lambda: model.index(0, 2, device).data() == "Connected",
                within=CONNECTION_POLL_MS / 1000 + 10,
                what="Connected in the tree",
            )
        finally:
            await client.shutdown()
        await until(
            lambda: model.index(0, 2, device).data() == "Disconnected",
            within=CONNECTION_POLL_MS / 1000 + 10,
            what="Disconnected again",
        )

    qrun(scenario(), timeout=90)
