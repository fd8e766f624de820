"""412 in the editor: both versions shown, nothing lost, then merge, overwrite or reload;
and Replace, which is asked for first."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMessageBox

from tests.ui.editor_fixtures import (
    START,
    desired,
    edit,
    hub,
    hub_tls,
    idle,
    opened,
    sent,
    window,
)
from twin_explorer.service.edit_conflict import Choice
from twin_explorer.twin.events import Section
from twin_explorer.ui.panes.twin_editor.layout import TAB_CONFLICT, TAB_EDIT

__all__ = ["hub", "hub_tls", "sent", "window"]


async def _conflict(window, hub):
    """My edit (speed 5, tag owner) and theirs first (speed 9, led on): a 412 on save."""
    editor = window.editor
    other = await opened(window, hub, START)
    mine = edit(window, lambda d: (desired(d)["fan"].update(speed=5), d["tags"].update(owner="me")))
    await other.patch_twin(
        "d1", None, {"properties": {"desired": {"fan": {"speed": 9}, "led": "on"}}}, None
    )
    editor.save()
    await idle(window)
    return other, mine


def test_a_conflict_shows_both_versions_and_keeps_my_text(window, hub, sent, qrun):
    editor = window.editor
    view = editor.conflict_view

    async def scenario():
        other, mine = await _conflict(window, hub)
        assert sent == []  # nothing was written
        assert (await other.get_twin("d1")).desired["fan"] == {"speed": 9}
        assert editor.ui.tabs.currentIndex() == TAB_CONFLICT
        assert editor.text_view.toPlainText() == mine and editor.text_view.isReadOnly()
        assert json.loads(view.theirs_view.toPlainText()) == {
            "properties": {"desired": {"fan": {"speed": 9}, "led": "on"}}
        }
        assert json.loads(view.mine_view.toPlainText()) == {
            "tags": {"owner": "me"},
            "properties": {"desired": {"fan": {"speed": 5}}},
        }
        assert view.my_text.toPlainText() == mine
        assert (
            view.overlaps.rowCount() == 1 and view.overlaps.item(0, 0).text() == "desired.fan.speed"
        )
        assert (view.overlaps.item(0, 1).text(), view.overlaps.item(0, 2).text()) == ("9", "5")
        assert not view.merge_button.isEnabled()  # the overlap needs a choice first
        assert not editor.save_action.isEnabled()
        assert "Someone else changed this twin" in editor.ui.banner.text()

    qrun(scenario())


def test_merge_keeps_both_changes_and_saves_with_their_etag(window, hub, sent, qrun):
    editor = window.editor
    view = editor.conflict_view

    async def scenario():
        other, _ = await _conflict(window, hub)
        their_etag = (await other.get_twin("d1")).etag
        view.choose_all(Choice.MINE)
        assert view.merge_button.isEnabled()
        view.merge_button.click()
        assert editor.ui.tabs.currentIndex() == TAB_EDIT and editor.session.etag == their_etag
        merged = json.loads(editor.text_view.toPlainText())
        assert (
            desired(merged) == {"fan": {"speed": 5}, "led": "on"}
            and merged["tags"]["owner"] == "me"
        )
        assert editor.save_action.isEnabled()
        editor.save_action.trigger()
        await idle(window)
        twin = await other.get_twin("d1")
        assert twin.desired["fan"] == {"speed": 5} and twin.desired["led"] == "on"
        assert twin.tags == {"site": "lab", "owner": "me"}
        assert [e.body for e in sent] == [
            {"tags": {"owner": "me"}, "properties": {"desired": {"fan": {"speed": 5}}}}
        ]

    qrun(scenario())


def test_merge_can_keep_theirs_where_we_overlap(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other, _ = await _conflict(window, hub)
        editor.conflict_view.choose_all(Choice.THEIRS)
        editor.conflict_view.merge_button.click()
        editor.save()
        await idle(window)
        twin = await other.get_twin("d1")
        assert twin.desired["fan"] == {"speed": 9} and twin.tags["owner"] == "me"

    qrun(scenario())


def test_overwrite_sends_my_patch_with_their_etag(window, hub, sent, qrun):
    editor = window.editor

    async def scenario():
        other, _ = await _conflict(window, hub)
        editor.conflict_view.overwrite_button.click()
        await idle(window)
        twin = await other.get_twin("d1")
        assert twin.desired["fan"] == {"speed": 5} and twin.desired["led"] == "on"
        assert twin.tags["owner"] == "me"
        assert editor.session.etag == twin.etag and editor.session.conflict is None
        assert not editor.ui.tabs.isTabEnabled(TAB_CONFLICT)
        assert desired(json.loads(editor.text_view.toPlainText()))["led"] == "on"
        assert len(sent) == 1 and sent[0].section is Section.TWIN

    qrun(scenario())


def test_reload_takes_theirs_and_my_edit_can_be_restored(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other, mine = await _conflict(window, hub)
        assert not editor.restore_action.isEnabled()
        editor.conflict_view.reload_button.click()
        loaded = json.loads(editor.text_view.toPlainText())
        assert (
            desired(loaded) == {"fan": {"speed": 9}, "led": "on"} and "owner" not in loaded["tags"]
        )
        assert not editor.session.dirty and "Restore My Edit" in editor.ui.banner.text()
        assert editor.restore_action.isEnabled()
        editor.restore_action.trigger()
        assert editor.text_view.toPlainText() == mine
        assert editor.ui.tabs.currentIndex() == TAB_CONFLICT
        assert editor.conflict_view.overlaps.rowCount() == 1
        assert (await other.get_twin("d1")).tags == {"site": "lab"}  # still nothing written

    qrun(scenario())


def test_a_reported_change_meanwhile_saves_without_a_conflict(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await opened(window, hub)
        edit(window, lambda d: desired(d).update(led="on"))
        hub.core.patch_reported("d1", None, {"temperature": 21})
        editor.save()
        await idle(window)
        assert (await other.get_twin("d1")).desired["led"] == "on"
        assert "changed only in reported properties" in editor.ui.banner.text()

    qrun(scenario())


def _click(box: QMessageBox, text: str) -> None:
    next(b for b in box.buttons() if b.text() == text).click()


def test_replace_is_confirmed_and_replaces(window, hub, sent, qrun):
    editor = window.editor

    async def scenario():
        other = await opened(window, hub, START)
        edit(window, lambda d: d.update(tags={"only": 1}, properties={"desired": {"mode": "new"}}))
        box = editor.confirm_replace()
        assert box is not None and box.isVisible() and "Replace" in box.text()
        assert '"mode": "new"' in box.detailedText()
        box.button(QMessageBox.StandardButton.Cancel).click()
        assert sent == [] and (await other.get_twin("d1")).tags == {"site": "lab"}

        editor.replace_action.trigger()
        _click(editor.replace_box, "Replace")
        await idle(window)
        twin = await other.get_twin("d1")
        assert twin.tags == {"only": 1}
        assert {k: v for k, v in twin.desired.items() if not k.startswith("$")} == {"mode": "new"}
        (event,) = sent
        assert event.section is Section.TWIN and event.body == {
            "tags": {"only": 1},
            "properties": {"desired": {"mode": "new"}},
        }
        assert event.version == twin.desired["$version"]

    qrun(scenario())
