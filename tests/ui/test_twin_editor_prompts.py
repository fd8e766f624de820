"""Unsaved edits are asked about (tree selection, quitting); desired vs reported."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.ui.conftest import until
from tests.ui.editor_fixtures import (
    connect,
    desired,
    edit,
    hub,
    hub_tls,
    idle,
    open_twin,
    opened,
    report,
    window,
)
from twin_explorer.service.edit_status import SyncState
from twin_explorer.twin.events import Direction, PatchEvent, Section
from twin_explorer.ui.panes.twin_editor.layout import TAB_STATUS

__all__ = ["hub", "hub_tls", "window"]

Button = QMessageBox.StandardButton


async def _edit_d1_in_the_tree(window, hub, name: str):
    """d1 and d2 in the tree; d1 selected, loaded, and its tag 'name' edited to ``name``.
    Returns the text and a second service: 'someone else'."""
    editor = window.editor
    other = await connect(window, hub)
    for device in ("d1", "d2"):
        await other.create_device(device)
        await other.patch_twin(device, None, {"tags": {"name": device}}, None)
    window.tree_pane.reload()
    model = window.tree_pane.model
    await until(lambda: model.rowCount() == 2, what="two devices in the tree")
    _select(window, 0)
    await until(lambda: editor.session is not None and not editor._busy, what="d1")
    return edit(window, lambda d: d["tags"].update(name=name)), other


def _select(window, row: int) -> None:
    view = window.tree_pane.view
    view.setCurrentIndex(view.model().index(row, 0))


async def _on_d2(window) -> None:
    editor = window.editor
    await until(lambda: editor.session is not None and editor.session.device_id == "d2", what="d2")


def _current_device(window) -> str:
    return window.tree_pane.current_row().device_id


def test_switching_with_unsaved_edits_asks_and_cancel_keeps_everything(window, hub, qrun):
    editor = window.editor

    async def scenario():
        mine, _ = await _edit_d1_in_the_tree(window, hub, "changed")
        _select(window, 1)
        box = editor.unsaved_box
        assert box is not None and box.isVisible() and "d1" in box.text()
        box.button(Button.Cancel).click()
        assert _current_device(window) == "d1"  # the tree is back on the edited twin
        assert editor.session.device_id == "d1" and editor.text_view.toPlainText() == mine

        _select(window, 1)
        editor.unsaved_box.button(Button.Discard).click()
        await _on_d2(window)
        assert json.loads(editor.text_view.toPlainText())["tags"] == {"name": "d2"}

    qrun(scenario())


def test_switching_can_save_first(window, hub, qrun):
    editor = window.editor

    async def scenario():
        _, other = await _edit_d1_in_the_tree(window, hub, "saved")
        _select(window, 1)
        editor.unsaved_box.button(Button.Save).click()
        await _on_d2(window)
        assert (await other.get_twin("d1")).tags == {"name": "saved"}
        assert _current_device(window) == "d2"

    qrun(scenario())


def test_a_save_that_fails_keeps_the_selection_and_the_edit(window, hub, qrun):
    editor = window.editor

    async def scenario():
        _, other = await _edit_d1_in_the_tree(window, hub, "mine")
        await other.patch_twin("d1", None, {"tags": {"name": "theirs"}}, None)
        _select(window, 1)
        editor.unsaved_box.button(Button.Save).click()
        await idle(window)
        assert editor.session.device_id == "d1" and editor.session.conflict is not None
        assert _current_device(window) == "d1"

    qrun(scenario())


@pytest.fixture
def keep_running(qapp):
    """Closing the only window would quit the app, and with it the test's event loop."""
    before = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    yield
    qapp.setQuitOnLastWindowClosed(before)


def test_quitting_with_unsaved_edits_asks(window, hub, qrun, keep_running):
    editor = window.editor
    closed: list[bool] = []
    window.closed.connect(lambda: closed.append(True))

    async def scenario():
        other = await opened(window, hub)
        edit(window, lambda d: d["tags"].update(x=1))
        window.close()
        editor.unsaved_box.button(Button.Cancel).click()
        assert window.isVisible() and not closed
        assert json.loads(editor.text_view.toPlainText())["tags"] == {"x": 1}
        window.close()
        editor.unsaved_box.button(Button.Save).click()
        await until(lambda: bool(closed), what="the window to close after saving")
        assert (await other.get_twin("d1")).tags == {"x": 1}

    qrun(scenario())


def test_desired_vs_reported_follows_the_device(window, hub, qrun):
    editor = window.editor
    table = editor.status_view

    async def scenario():
        other = await connect(window, hub)
        await other.create_device("d1")
        await other.create_module("d1", "m1")
        body = {"properties": {"desired": {"fan": {"speed": 3}, "led": "on", "mode": "eco"}}}
        await other.patch_twin("d1", "m1", body, None)
        await report(hub, other, ("d1", "m1"), {"fan": {"speed": 1}, "led": "on"})
        await open_twin(window, "d1", "m1")
        editor.ui.tabs.setCurrentIndex(TAB_STATUS)  # computed when looked at
        assert table.state_of("fan.speed") is SyncState.PENDING
        assert table.state_of("led") is SyncState.MATCHING
        assert table.state_of("mode") is SyncState.NEVER
        twin = (await other.get_twin("d1", "m1")).doc
        speed = next(r for r in table.rows if r.label == "fan.speed")
        meta = twin["properties"]["desired"]["$metadata"]["fan"]["speed"]
        assert speed.desired_updated == meta["$lastUpdated"]
        assert speed.desired_version == meta["$lastUpdatedVersion"] == 2
        assert speed.reported_version == twin["properties"]["reported"]["$version"]
        model = table.table.model()
        row = next(n for n in range(model.rowCount()) if model.index(n, 0).data() == "fan.speed")
        assert model.index(row, 3).data() == "pending"
        assert model.index(row, 5).data() == "2"
        assert "1 pending" in table.summary.text() and "1 never reported" in table.summary.text()

        # The device catches up. A simulated module would publish its reported patch on the
        # app's stream; that event alone makes the editor read the twin again.
        await report(hub, other, ("d1", "m1"), {"fan": {"speed": 3}, "mode": "eco"})
        version = (await other.get_twin("d1", "m1")).reported["$version"]
        window.patches.publish(
            PatchEvent(
                "d1",
                "m1",
                Direction.REPORTED,
                Section.REPORTED,
                {"fan": {"speed": 3}},
                version,
                source="simulator:d1/m1",
            )
        )
        await until(lambda: table.state_of("fan.speed") is SyncState.MATCHING, what="a refresh")
        assert table.state_of("mode") is SyncState.MATCHING
        assert not editor.session.dirty

    qrun(scenario())


def test_a_change_elsewhere_refreshes_a_clean_editor_and_warns_a_dirty_one(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await opened(window, hub)
        await other.patch_twin("d1", None, {"tags": {"a": 1}}, None)
        editor.reload_action.trigger()
        await until(lambda: '"a": 1' in editor.text_view.toPlainText(), what="the new tag")
        mine = edit(window, lambda d: desired(d).update(led="on"))
        await other.patch_twin("d1", None, {"tags": {"a": 2}}, None)
        editor.reload_action.trigger()
        await until(lambda: "changed after you started" in editor.ui.banner.text(), what="warning")
        assert editor.text_view.toPlainText() == mine
        latest = editor.session.latest
        assert latest["tags"] == {"a": 2} and editor.session.etag != latest["etag"]
        await until(lambda: latest["etag"] in editor.ui.readonly_view.toPlainText(), what="etag")
        await idle(window)

    qrun(scenario())
