"""The editor's views on their own: colours, underlines, gutter, side-by-side rows."""

from __future__ import annotations

from twin_explorer.service.edit_diff import diff_documents
from twin_explorer.service.edit_text import validate_text
from twin_explorer.ui.common import theme
from twin_explorer.ui.panes.twin_editor.code_view import CodeView, json_tokens
from twin_explorer.ui.panes.twin_editor.diff_view import FILLER, SideBySideView


def test_tokens_are_in_utf16_units():
    line = '  "k😀y": "v", "n": -1.5e3, "t": true'
    tokens = json_tokens(line)
    kinds = [kind for _, _, kind in tokens if kind != "punct"]
    assert kinds == ["key", "string", "key", "number", "key", "literal"]
    start, length, _ = tokens[0]
    assert (start, length) == (2, len('"k😀y"') + 1)  # the emoji is two UTF-16 units
    number = next(t for t in tokens if t[2] == "number")
    assert number[1] == len("-1.5e3")


def test_an_issue_after_an_emoji_underlines_exactly_its_key(qtbot):
    view = CodeView()
    qtbot.addWidget(view)
    text = '{"tags": {"😀": 1, "a b": 2}, "properties": {"desired": {}}}'
    view.setPlainText(text)
    (issue,) = validate_text(text).issues
    view.set_issues([issue])
    (selection,) = view.extraSelections()
    assert selection.cursor.selectedText() == '"a b"'
    assert "not allow" in selection.format.toolTip()
    view.goto(issue.offset, issue.length)
    assert view.textCursor().selectedText() == '"a b"'
    assert view.cursor_line_column() == (1, issue.column + issue.length)


def test_only_lines_on_screen_are_coloured(qtbot):
    view = CodeView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    view.setPlainText("\n".join(f'"key{n}": {n},' for n in range(5000)))
    document = view.document()
    qtbot.waitUntil(lambda: bool(document.firstBlock().layout().formats()))
    last = document.lastBlock()
    assert not last.layout().formats()
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())
    qtbot.waitUntil(lambda: bool(document.lastBlock().layout().formats()))
    assert view.highlighter.rehighlight() > 0


def test_read_only_views_look_read_only(qtbot):
    view = CodeView(read_only=True)
    qtbot.addWidget(view)
    assert view.isReadOnly() and "background" in view.styleSheet()
    view.set_read_only(False)
    assert not view.isReadOnly() and view.styleSheet() == ""


def test_side_by_side_rows_are_padded_and_coloured(qtbot):
    view = SideBySideView("hub", "editor")
    qtbot.addWidget(view)
    view.show_rows(diff_documents({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}))
    left, right = view.left.toPlainText().split("\n"), view.right.toPlainText().split("\n")
    assert len(left) == len(right)
    added = right.index('  "c": 4')
    assert left[added] == ""  # padding on the side without the line
    backgrounds = {
        s.cursor.blockNumber(): s.format.background().color() for s in view.left.extraSelections()
    }
    assert backgrounds[added] == theme.colour(FILLER)
    assert "changed line" in view.summary.text()
