"""Two JSON documents side by side, aligned row by row, differences coloured."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from twin_explorer.service.edit_diff import Change, DiffRow
from twin_explorer.ui.panes.twin_editor.code_view import CodeView

# Theme roles of the line backgrounds.
COLOURS = {Change.CHANGED: "changed", Change.REMOVED: "removed", Change.ADDED: "added"}
FILLER = "filler"  # the side that has no line in this row


class SideBySideView(QWidget):
    """Left and right panes that scroll together; ``show_rows`` fills them."""

    def __init__(self, left_title: str, right_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.left = CodeView(read_only=True)
        self.right = CodeView(read_only=True)
        self.left_title = QLabel(left_title)
        self.right_title = QLabel(right_title)
        for title in (self.left_title, self.right_title):
            title.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setObjectName("diffSummary")
        panes = QHBoxLayout()
        for title, view in ((self.left_title, self.left), (self.right_title, self.right)):
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(view, 1)
            panes.addLayout(column, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addLayout(panes, 1)
        self._rows: list[DiffRow] = []
        for one, other in ((self.left, self.right), (self.right, self.left)):
            one.verticalScrollBar().valueChanged.connect(other.verticalScrollBar().setValue)
            one.horizontalScrollBar().valueChanged.connect(other.horizontalScrollBar().setValue)

    def set_titles(self, left: str, right: str) -> None:
        self.left_title.setText(left)
        self.right_title.setText(right)

    def show_rows(self, rows: list[DiffRow]) -> None:
        self._rows = rows
        left_lines: list[str] = []
        right_lines: list[str] = []
        left_colours: dict[int, str] = {}
        right_colours: dict[int, str] = {}
        for number, row in enumerate(rows):
            left_lines.append(row.left if row.left is not None else "")
            right_lines.append(row.right if row.right is not None else "")
            if row.change is Change.EQUAL:
                continue
            colour = COLOURS[row.change]
            left_colours[number] = colour if row.left is not None else FILLER
            right_colours[number] = colour if row.right is not None else FILLER
        self.left.replace_text("\n".join(left_lines))
        self.right.replace_text("\n".join(right_lines))
        self.left.set_line_backgrounds(left_colours)
        self.right.set_line_backgrounds(right_colours)
        changed = sum(1 for row in rows if row.change is not Change.EQUAL)
        self.summary.setText(
            "No differences." if not changed else f"{changed} changed line{'s' * (changed != 1)}."
        )

    @property
    def rows(self) -> list[DiffRow]:
        return self._rows
