"""An inline, dismissable message bar: errors that need no dialog still need to be seen."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from twin_explorer.ui.common import theme


class NoticeBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        theme.style(
            self,
            "#noticeBar { background: $error_bg; border: 1px solid $error_border; }"
            " #noticeBar QLabel, #noticeBar QToolButton { color: $text; }",
        )
        self.label = QLabel()
        self.label.setObjectName("noticeText")
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        theme.pane_layout(layout)
        layout.setContentsMargins(theme.MARGIN, 2, 2, 2)  # a slim bar
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
