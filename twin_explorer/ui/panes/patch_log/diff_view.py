"""A coloured diff of two texts: unified, or side by side with synchronised scrolling.

Lines are written block by block into plain-text documents with a block background
(plain text edits paint it), which stays fast for twins of thousands of lines where an
HTML table would not.
"""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QStackedWidget, QWidget

from twin_explorer.service.history import SideBySideRow, side_by_side, unified_diff
from twin_explorer.ui.common import theme

# Theme roles of the line backgrounds.
ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
HUNK = "hunk"
EMPTY = "filler"


def _text_edit(name: str) -> QPlainTextEdit:
    edit = QPlainTextEdit()
    edit.setObjectName(name)
    edit.setReadOnly(True)
    edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return edit


def _write(edit: QPlainTextEdit, lines: list[tuple[str, str | None]]) -> None:
    """Fill ``edit`` with (text, background colour or None) lines."""
    edit.clear()
    document = edit.document()
    cursor = QTextCursor(document)
    cursor.beginEditBlock()
    plain = QTextCharFormat()
    for number, (text, colour) in enumerate(lines):
        block = QTextBlockFormat()
        if colour:
            block.setBackground(theme.colour(colour))
        if number == 0:
            cursor.setBlockFormat(block)
        else:
            cursor.insertBlock(block)
        cursor.insertText(text, plain)
    cursor.endEditBlock()
    edit.moveCursor(QTextCursor.MoveOperation.Start)


def unified_lines(lines: list[str]) -> list[tuple[str, str | None]]:
    coloured: list[tuple[str, str | None]] = []
    for line in lines:
        if line.startswith(("+++", "---")):
            coloured.append((line, None))
        elif line.startswith("@@"):
            coloured.append((line, HUNK))
        elif line.startswith("+"):
            coloured.append((line, ADDED))
        elif line.startswith("-"):
            coloured.append((line, REMOVED))
        else:
            coloured.append((line, None))
    return coloured


def side_lines(
    rows: list[SideBySideRow],
) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    left: list[tuple[str, str | None]] = []
    right: list[tuple[str, str | None]] = []
    left_colour = {"same": None, "changed": CHANGED, "removed": REMOVED, "added": EMPTY}
    right_colour = {"same": None, "changed": CHANGED, "removed": EMPTY, "added": ADDED}
    for row in rows:
        left.append((row.left if row.left is not None else "", left_colour[row.kind]))
        right.append((row.right if row.right is not None else "", right_colour[row.kind]))
    return left, right


class DiffView(QStackedWidget):
    """Shows ``before`` against ``after``; ``set_side_by_side`` switches the layout."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("diffView")
        self.unified = _text_edit("unifiedDiff")
        self.left = _text_edit("leftDiff")
        self.right = _text_edit("rightDiff")
        pair = QWidget()
        row = QHBoxLayout(pair)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.left)
        row.addWidget(self.right)
        self.addWidget(self.unified)
        self.addWidget(pair)
        for one, other in ((self.left, self.right), (self.right, self.left)):
            one.verticalScrollBar().valueChanged.connect(other.verticalScrollBar().setValue)
            one.horizontalScrollBar().valueChanged.connect(other.horizontalScrollBar().setValue)
        self._texts = ("", "")
        self._names = ("before", "after")
        self._side = False
        self._message = False  # a message shows instead of a diff
        self.diff_lines: list[str] = []  # the unified diff last shown (also for tests)
        theme.on_change(self, self._recolour)

    def _recolour(self) -> None:
        if not self._message:
            self._render()

    @property
    def side_by_side(self) -> bool:
        return self._side

    def set_side_by_side(self, on: bool) -> None:
        self._side = bool(on)
        self._render()

    def show_texts(
        self, before: str, after: str, before_name: str = "before", after_name: str = "after"
    ) -> None:
        self._texts = (before, after)
        self._names = (before_name, after_name)
        self._message = False
        self._render()

    def show_message(self, text: str) -> None:
        self.diff_lines = []
        self._message = True
        self.setCurrentWidget(self.unified)
        self.unified.setPlainText(text)

    def _render(self) -> None:
        before, after = self._texts
        self.diff_lines = unified_diff(before, after, *self._names)
        if self._side:
            left, right = side_lines(side_by_side(before, after))
            _write(self.left, left)
            _write(self.right, right)
            self.setCurrentIndex(1)
            return
        self.setCurrentIndex(0)
        if not self.diff_lines:
            self.unified.setPlainText("No difference.")
            return
        _write(self.unified, unified_lines(self.diff_lines))
