"""A JSON text view: syntax colours, line numbers, issues underlined where they are.

Positions from the Qt-free code are Python string offsets (code points); Qt counts UTF-16
units. ``qt_position`` converts, so a key after an emoji is still underlined exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from PySide6.QtCore import QObject, QRect, QSize, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextLayout,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from twin_explorer.service.edit_text import EditIssue, Severity
from twin_explorer.ui.common import theme

_TOKENS = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))'
    r'|(?P<string>"(?:[^"\\]|\\.)*"?)'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<literal>\b(?:true|false|null)\b)"
    r"|(?P<punct>[{}\[\],:])"
)


def _format(colour: QColor, bold: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(colour)
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    return fmt


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, as Qt counts positions."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


_FORMATS: dict[bool, dict[str, QTextCharFormat]] = {}


def json_formats() -> dict[str, QTextCharFormat]:
    """The formats of each token kind, in the current colour scheme."""
    dark = theme.is_dark()
    formats = _FORMATS.get(dark)
    if formats is None:
        kinds = ("key", "string", "number", "literal", "punct")
        formats = {kind: _format(theme.colour(kind, dark), kind == "literal") for kind in kinds}
        _FORMATS[dark] = formats
    return formats


def issue_colour(severity: Severity) -> QColor:
    return theme.colour("error" if severity is Severity.ERROR else "warning")


def json_tokens(text: str) -> list[tuple[int, int, str]]:
    """(start, length, kind) of the JSON tokens of one line, in UTF-16 units as Qt counts."""
    wide = not text.isascii()
    tokens = []
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        start, end = match.start(), match.end()
        if wide:
            start, end = utf16_len(text[:start]), utf16_len(text[:end])
        tokens.append((start, end - start, kind))
    return tokens


class ViewportHighlighter(QObject):
    """JSON colours for the lines on screen, and only those.

    ``QSyntaxHighlighter`` calls into Python for every line of the document whenever the
    text is set: about 20 ms for a twin at the size limits before any colour is applied,
    and the whole document again for each paste. Here the visible lines (and a margin)
    get their formats, through the same ``QTextLayout.setFormats`` call the Qt class
    uses, when the view scrolls, resizes or the text changes.
    """

    MARGIN_LINES = 20

    def __init__(self, view: QPlainTextEdit) -> None:
        super().__init__(view)
        self._view = view
        self._done: dict[int, str] = {}  # block number -> the text it was coloured for
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.highlight_visible)
        view.document().contentsChange.connect(self._changed)
        view.verticalScrollBar().valueChanged.connect(self.schedule)

    def _changed(self, *_: object) -> None:
        self._done.clear()
        self.schedule()

    def schedule(self) -> None:
        self._timer.start()

    def highlight_visible(self) -> int:
        """Colour the lines on screen that are not coloured yet; returns how many."""
        view = self._view
        document = view.document()
        lines = view.viewport().height() // max(1, view.fontMetrics().lineSpacing())
        block = view.firstVisibleBlock()
        first = last = None
        formats = json_formats()
        for _ in range(lines + self.MARGIN_LINES):
            if not block.isValid():
                break
            number, text = block.blockNumber(), block.text()
            if self._done.get(number) != text:
                ranges = []
                for start, length, kind in json_tokens(text):
                    span = QTextLayout.FormatRange()
                    span.start, span.length, span.format = start, length, formats[kind]
                    ranges.append(span)
                block.layout().setFormats(ranges)
                self._done[number] = text
                if first is None:
                    first = block
                last = block
            block = block.next()
        if first is None or last is None:
            return 0
        end = last.position() + last.length()
        document.markContentsDirty(first.position(), end - first.position())
        return last.blockNumber() - first.blockNumber() + 1

    def rehighlight(self) -> int:
        self._done.clear()
        return self.highlight_visible()


class _Gutter(QWidget):
    def __init__(self, view: CodeView) -> None:
        super().__init__(view)
        self._view = view

    def sizeHint(self) -> QSize:
        return QSize(self._view.gutter_width(), 0)

    def paintEvent(self, event: QPaintEvent) -> None:
        self._view.paint_gutter(event)


class CodeView(QPlainTextEdit):
    """A monospaced JSON view with a line-number gutter and issue underlines."""

    def __init__(self, parent: QWidget | None = None, *, read_only: bool = False) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setTabChangesFocus(False)
        self.highlighter = ViewportHighlighter(self)
        self._gutter = _Gutter(self)
        self._issue_selections: list[QTextEdit.ExtraSelection] = []
        self._line_selections: list[QTextEdit.ExtraSelection] = []
        self._issue_lines: dict[int, Severity] = {}
        self._issues: list[EditIssue] = []
        self._line_roles: dict[int, str] = {}
        self.blockCountChanged.connect(self._update_gutter_width)
        self.updateRequest.connect(self._update_gutter)
        self._update_gutter_width()
        self.set_read_only(read_only)
        theme.on_change(self, self._recolour)

    def _recolour(self) -> None:
        """The scheme changed: colours baked into formats and marks are redone."""
        self.highlighter.rehighlight()
        self.set_line_backgrounds(self._line_roles)
        self.set_issues(self._issues)
        self._gutter.update()

    def set_read_only(self, read_only: bool) -> None:
        """Read-only text looks it: grey background, and the caret stays for selecting."""
        self.setReadOnly(read_only)
        flags = Qt.TextInteractionFlag.TextSelectableByMouse
        flags |= Qt.TextInteractionFlag.TextSelectableByKeyboard
        if read_only:
            self.setTextInteractionFlags(flags)
            theme.style(self, "QPlainTextEdit { background: $read_only; color: $text; }")
        else:
            self.setTextInteractionFlags(flags | Qt.TextInteractionFlag.TextEditable)
            theme.style(self, "")

    # -- text ----------------------------------------------------------------------------

    def replace_text(self, text: str) -> None:
        """New content, keeping the scroll position when it is the same twin again."""
        if self.toPlainText() == text:
            return
        bar = self.verticalScrollBar()
        scroll = bar.value()
        cursor_pos = self.textCursor().position()
        self.setPlainText(text)
        cursor = self.textCursor()
        cursor.setPosition(min(cursor_pos, len(text)))
        self.setTextCursor(cursor)
        bar.setValue(scroll)

    def qt_position(self, offset: int) -> int:
        """The Qt cursor position of a Python offset into ``toPlainText()``."""
        text = self.toPlainText()
        offset = max(0, min(offset, len(text)))
        return utf16_len(text[:offset])

    def goto(self, offset: int, length: int = 0) -> None:
        """Put the caret at ``offset`` (selecting ``length`` characters) and show it."""
        cursor = self.textCursor()
        cursor.setPosition(self.qt_position(offset))
        if length:
            cursor.setPosition(self.qt_position(offset + length), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        self.centerCursor()
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    def cursor_line_column(self) -> tuple[int, int]:
        """1-based line and column (in characters) of the caret."""
        cursor = self.textCursor()
        block = cursor.block()
        text, units = block.text(), cursor.positionInBlock()
        column = units
        if not text.isascii():  # count characters, not UTF-16 units
            column = len(text.encode("utf-16-le")[: units * 2].decode("utf-16-le", "ignore"))
        return block.blockNumber() + 1, column + 1

    # -- marks ---------------------------------------------------------------------------

    def set_issues(self, issues: Iterable[EditIssue]) -> None:
        """Wavy underlines under each issue's span; a mark in the gutter on its line."""
        text = self.toPlainText()
        selections = []
        self._issues = issues = list(issues)
        self._issue_lines = {}
        for issue in issues:
            if issue.offset > len(text):
                continue
            fmt = QTextCharFormat()
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            fmt.setUnderlineColor(issue_colour(issue.severity))
            fmt.setToolTip(issue.message)
            selection = QTextEdit.ExtraSelection()
            selection.format = fmt  # type: ignore[attr-defined]
            cursor = QTextCursor(self.document())
            start = utf16_len(text[: issue.offset])
            end = start + utf16_len(text[issue.offset : issue.offset + issue.length])
            cursor.setPosition(start)
            cursor.setPosition(max(end, start + 1), QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor  # type: ignore[attr-defined]
            selections.append(selection)
            if self._issue_lines.get(issue.line) is not Severity.ERROR:
                self._issue_lines[issue.line] = issue.severity
        self._issue_selections = selections
        self._apply_selections()
        self._gutter.update()

    def set_line_backgrounds(self, roles: dict[int, str]) -> None:
        """Whole-line backgrounds by 0-based line number, as theme roles (the diff views)."""
        self._line_roles = dict(roles)
        selections = []
        document: QTextDocument = self.document()
        for line, role in roles.items():
            block = document.findBlockByNumber(line)
            if not block.isValid():
                continue
            selection = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(theme.colour(role))
            fmt.setProperty(QTextFormat.Property.FullWidthSelection, True)
            selection.format = fmt  # type: ignore[attr-defined]
            selection.cursor = QTextCursor(block)  # type: ignore[attr-defined]
            selections.append(selection)
        self._line_selections = selections
        self._apply_selections()

    def _apply_selections(self) -> None:
        self.setExtraSelections(self._line_selections + self._issue_selections)

    def issue_selection_count(self) -> int:
        return len(self._issue_selections)

    # -- gutter --------------------------------------------------------------------------

    def gutter_width(self) -> int:
        digits = max(3, len(str(self.blockCount())))
        return 14 + self.fontMetrics().horizontalAdvance("9") * digits

    def _update_gutter_width(self, _count: int = 0) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _update_gutter(self, rect: QRect, dy: int) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.highlighter.schedule()
        contents = self.contentsRect()
        self._gutter.setGeometry(
            QRect(contents.left(), contents.top(), self.gutter_width(), contents.height())
        )

    def paint_gutter(self, event: QPaintEvent) -> None:
        painter = QPainter(self._gutter)
        painter.fillRect(
            event.rect(), theme.colour("read_only_gutter" if self.isReadOnly() else "gutter")
        )
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = self.fontMetrics().height()
        width = self._gutter.width()
        while block.isValid() and top <= event.rect().bottom():
            bottom = top + round(self.blockBoundingRect(block).height())
            if block.isVisible() and bottom >= event.rect().top():
                line = block.blockNumber() + 1
                severity = self._issue_lines.get(line)
                if severity is not None:
                    colour = issue_colour(severity)
                    painter.fillRect(0, top, 4, height, colour)
                    painter.setPen(colour)
                else:
                    painter.setPen(theme.colour("muted"))
                painter.drawText(0, top, width - 6, height, Qt.AlignmentFlag.AlignRight, str(line))
            block = block.next()
            top = bottom
