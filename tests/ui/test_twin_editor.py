"""The twin editor in the real main window, against a real local hub."""

from __future__ import annotations

import json
import socket

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.editor_fixtures import (
    START,
    connect,
    desired,
    edit,
    hub,
    hub_tls,
    idle,
    line_of,
    opened,
    sent,
    window,
)
from twin_explorer.twin.events import Direction, Section

__all__ = ["hub", "hub_tls", "sent", "window"]


async def _ready(window, hub):
    return await opened(window, hub, START)


def test_edit_and_save_sends_exactly_the_patch(window, hub, sent, qrun):
    editor = window.editor

    async def scenario():
        other = await _ready(window, hub)
        before = await other.get_twin("d1")
        assert json.loads(editor.text_view.toPlainText()) == START
        assert not editor.save_action.isEnabled()  # nothing to save yet
        edit(window, lambda d: (desired(d)["fan"].update(speed=4), d["tags"].update(floor=2)))
        assert editor.save_action.isEnabled()
        assert "●" in editor.ui.title.text()  # unsaved marker
        editor.save_action.trigger()
        await idle(window)

        after = await other.get_twin("d1")
        assert after.etag != before.etag and editor.session.etag == after.etag
        assert after.tags == {"site": "lab", "floor": 2}
        assert after.desired["fan"] == {"speed": 4} and after.desired["led"] == "off"
        assert after.desired["$version"] == before.desired["$version"] + 1
        (event,) = sent
        assert (event.direction, event.section, event.source) == (
            Direction.SENT,
            Section.TWIN,
            "editor",
        )
        assert event.body == {
            "tags": {"floor": 2},
            "properties": {"desired": {"fan": {"speed": 4}}},
        }
        assert event.version == after.desired["$version"]
        assert not editor.save_action.isEnabled() and "●" not in editor.ui.title.text()
        assert "Saved the twin of d1" in editor.ui.banner.text()

    qrun(scenario())


def test_removing_a_key_sends_null(window, hub, sent, qrun):
    async def scenario():
        other = await _ready(window, hub)
        edit(window, lambda d: desired(d).pop("led"))
        window.editor.save()
        await idle(window)
        assert "led" not in (await other.get_twin("d1")).desired
        (event,) = sent
        assert event.section is Section.DESIRED and event.body == {"led": None}

    qrun(scenario())


def test_read_only_parts_are_apart_and_look_it(window, hub, qrun):
    editor = window.editor

    async def scenario():
        await _ready(window, hub)
        text = editor.text_view.toPlainText()
        assert "$metadata" not in text and "$version" not in text and "etag" not in text
        assert not editor.text_view.isReadOnly()
        readonly = editor.ui.readonly_view
        await until(readonly.toPlainText, what="the read-only view")
        assert readonly.isReadOnly() and "background" in readonly.styleSheet()
        shown = json.loads(readonly.toPlainText())
        assert shown["deviceId"] == "d1" and shown["etag"] == editor.session.etag
        assert "reported" in shown["properties"] and "$version" in shown["properties"]["desired"]
        assert "$metadata" not in shown["properties"]["desired"]  # until asked for
        editor.ui.show_metadata.setChecked(True)
        shown = json.loads(readonly.toPlainText())
        assert "$lastUpdated" in shown["properties"]["desired"]["$metadata"]
        assert "Read-only" in editor.findChild(QLabel, "readOnlyTitle").text()

    qrun(scenario())


def _deep(levels: int) -> dict:
    node: dict = {"leaf": 1}
    for level in range(levels, 0, -1):
        node = {f"level{level}": node}
    return node


CASES = {
    "invalid JSON": (lambda d: None, '"led": "off"', '"led": "off",,', "JSON syntax error"),
    "dollar": (lambda d: desired(d).update({"$bad": 1}), '"$bad"', None, "reserves"),
    "dot": (lambda d: desired(d).update({"a.b": 1}), '"a.b"', None, "'.'"),
    "space": (lambda d: d["tags"].update({"a b": 1}), '"a b"', None, "(space)"),
    "depth 11": (lambda d: desired(d).update(_deep(11)), '"level11"', None, "11 levels"),
    "oversize": (
        lambda d: desired(d).update({f"k{i:02}": "x" * 1000 for i in range(33)}),
        '"desired"',
        None,
        "32768 bytes",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_invalid_edit_disables_save_with_the_reason_at_its_line(window, hub, qrun, case):
    editor = window.editor
    change, needle, replace_with, reason = CASES[case]

    async def scenario():
        await _ready(window, hub)
        text = edit(window, change)
        if replace_with is not None:  # break the syntax by typing, as a user would
            text = text.replace(needle, replace_with)
            editor.text_view.setPlainText(text)
        await until(lambda: editor.ui.issues.count() > 0, what="validation while typing")
        assert not editor.save_action.isEnabled()
        assert editor.save() is None  # Ctrl+S does nothing but show the place
        issue = next(i for i in editor.session.validation.errors if reason in i.message)
        assert issue.line == line_of(text, needle)
        item = next(
            editor.ui.issues.item(n)
            for n in range(editor.ui.issues.count())
            if reason in editor.ui.issues.item(n).text()
        )
        assert item.text().startswith(f"Line {issue.line}, column {issue.column}:")
        assert editor.text_view.issue_selection_count() >= 1
        assert "error" in editor.ui.validity.text()
        editor.text_view.goto(0)
        editor.ui.issues.itemClicked.emit(item)
        assert editor.text_view.cursor_line_column() == (issue.line, issue.column + issue.length)

    qrun(scenario())


def test_typing_is_validated_when_typing_pauses(window, hub, qtbot, qrun):
    editor = window.editor

    async def scenario():
        await _ready(window, hub)
        editor.text_view.setFocus()
        editor.text_view.moveCursor(editor.text_view.textCursor().MoveOperation.End)
        qtbot.keyClicks(editor.text_view, "x")
        await until(lambda: editor.ui.issues.count() == 1, what="the syntax error")
        assert "after the end" in editor.ui.issues.item(0).text()
        qtbot.keyClick(editor.text_view, Qt.Key.Key_Backspace)
        await until(lambda: editor.ui.issues.count() == 0, what="the error to go")
        assert not editor.save_action.isEnabled()  # back to the loaded twin: nothing to save

    qrun(scenario())


def test_diff_view_shows_the_edit_against_the_hub(window, hub, qrun):
    editor = window.editor

    async def scenario():
        await _ready(window, hub)
        edit(window, lambda d: desired(d).update(led="on"))
        editor.diff_action.trigger()
        rows = editor.ui.diff_view.rows
        changed = [r for r in rows if r.change != "equal"]
        assert len(changed) == 1 and '"off"' in changed[0].left and '"on"' in changed[0].right
        assert "1 changed line" in editor.ui.diff_view.summary.text()
        assert json.loads(editor.ui.patch_view.toPlainText()) == {
            "properties": {"desired": {"led": "on"}}
        }

    qrun(scenario())


def test_loading_is_in_the_background_with_a_busy_indicator(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await connect(window, hub)
        await other.create_device("d1")
        task = editor.open_twin("d1")
        assert editor.ui.busy.isVisible() and "Loading" in editor.ui.message.text()
        await task
        assert not editor.ui.busy.isVisible() and editor.ui.stack.currentWidget() is editor.ui.tabs

    qrun(scenario())


def test_a_missing_twin_is_a_plain_message(window, hub, qrun):
    editor = window.editor

    async def scenario():
        await connect(window, hub)
        await editor.open_twin("gone", "m1")
        text = editor.ui.message.text()
        assert "gone/m1 is not on the hub any more" in text and "Traceback" not in text
        assert editor.ui.stack.currentWidget() is editor.ui.message
        assert not editor.save_action.isEnabled()

    qrun(scenario())


def test_an_unreachable_hub_is_a_plain_message(window, hub, qrun):
    editor = window.editor
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = hub.core.service_connection_string("iothubowner", f"localhost:{port}")

    async def scenario():
        service = service_for(hub, dead)
        editor.set_service(service)
        await editor.open_twin("d1")
        text = editor.ui.message.text()
        assert "could not be loaded: the hub did not answer" in text and "Traceback" not in text
        await service.aclose()

    qrun(scenario())


def test_a_twin_deleted_while_editing_keeps_the_text(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await _ready(window, hub)
        text = edit(window, lambda d: desired(d).update(led="on"))
        await other.delete_device("d1")
        editor.save()
        await idle(window)
        assert editor.text_view.toPlainText() == text
        assert (
            "Not saved" in editor.ui.banner.text()
            and "Your text is kept" in editor.ui.banner.text()
        )

    qrun(scenario())


def test_an_edit_survives_a_change_of_hub_connection(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await _ready(window, hub)
        mine = edit(window, lambda d: desired(d).update(led="on"))
        editor.set_service(None)  # disconnected (or another hub)
        assert editor.text_view.toPlainText() == mine and not editor.save_action.isEnabled()
        assert "can be saved only to the hub it came from" in editor.ui.banner.text()
        assert editor.refresh() is None  # a reload would drop the edit: not done
        await window.session.use("Local hub", service_for(hub))  # the same hub again
        assert editor.save_action.isEnabled() and not editor.ui.banner.isVisible()
        editor.save()
        await idle(window)
        assert (await other.get_twin("d1")).desired["led"] == "on"

    qrun(scenario())


def test_ctrl_s_right_after_typing_saves_what_was_typed(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await _ready(window, hub)
        _type_over(editor.text_view, '"off"', '"on"')
        QTest.keySequence(editor.text_view, QKeySequence.StandardKey.Save)  # no pause
        await until(lambda: editor.ui.banner.isVisible(), what="the save outcome")
        await idle(window)
        assert (await other.get_twin("d1")).desired["led"] == "on"
        assert "Saved the twin of d1" in editor.ui.banner.text()

    qrun(scenario())


def test_ctrl_s_right_after_typing_broken_json_refuses_with_the_place(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await _ready(window, hub)
        view = editor.text_view
        text = _type_over(view, '"off"', "of,")  # not JSON any more
        QTest.keySequence(view, QKeySequence.StandardKey.Save)
        banner = editor.ui.banner.text()
        assert editor.ui.banner.isVisible() and "Not saved: line" in banner, banner
        assert f"line {line_of(text, 'of,')}" in banner
        assert view.toPlainText() == text and editor.ui.issues.count() > 0
        assert not editor.save_action.isEnabled()  # checked now: off until fixed
        assert (await other.get_twin("d1")).desired["led"] == "off"

    qrun(scenario())


def test_deleting_the_twin_shown_empties_the_pane(window, hub, qrun):
    editor = window.editor

    async def scenario():
        await _ready(window, hub)
        assert editor.reload_action.isEnabled() and editor.replace_action.isEnabled()
        window.tree_pane.identities_deleted([("d1", None)])
        assert editor.ui.stack.currentWidget() is editor.ui.message
        assert "d1 was deleted from the hub" in editor.ui.message.text()
        _assert_actions_off(editor)

    qrun(scenario())


def test_deleting_a_twin_with_an_unsaved_edit_keeps_the_text(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await _ready(window, hub)
        text = edit(window, lambda d: desired(d).update(led="on"))
        await other.delete_device("d1")  # someone else deleted it: Reload finds out
        editor.reload_action.trigger()
        await until(lambda: "was deleted" in editor.ui.banner.text(), what="the notice")
        assert editor.text_view.toPlainText() == text
        assert editor.ui.stack.currentWidget() is editor.ui.tabs
        assert "unsaved edit is kept" in editor.ui.banner.text()
        _assert_actions_off(editor)
        assert editor.text_view.isReadOnly()

    qrun(scenario())


def _type_over(view, needle: str, typed: str) -> str:
    """Select ``needle`` in the editor and type ``typed`` over it; returns the text."""
    view.setFocus()
    view.setTextCursor(view.document().find(needle))
    QTest.keyClicks(view, typed)
    return view.toPlainText()


def _assert_actions_off(editor) -> None:
    for action in (editor.save_action, editor.replace_action, editor.reload_action):
        assert not action.isEnabled(), action.text()
