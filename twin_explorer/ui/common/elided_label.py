"""A one-line label that gives way: too long for its room, it is elided in the middle
(both ends of an identity or an etag stay readable) and its tooltip has the whole text."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QHelpEvent,
    QPainter,
    QPaintEvent,
    QTextDocumentFragment,
)
from PySide6.QtGui import Qt as GuiQt  # mightBeRichText lives in QtGui's Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QWidget


class ElidedLabel(QLabel):
    """Never wraps and never pushes its neighbours: it takes what the layout gives.

    ``leftover``: ask only for a few characters and take what is left over (its
    neighbours get their full width first), for the less important of two labels; give
    it a stretch in its layout.
    Rich text is shown as such while it fits; elided it is drawn plain, bold when the
    whole text starts in bold (``<b>name</b> ●``).
    """

    def __init__(
        self, text: str = "", parent: QWidget | None = None, *, leftover: bool = False
    ) -> None:
        super().__init__(text, parent)
        self.setWordWrap(False)
        self._leftover = leftover
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def plain_text(self) -> str:
        text = self.text()
        if self.textFormat() == Qt.TextFormat.PlainText or not GuiQt.mightBeRichText(text):
            return text
        return QTextDocumentFragment.fromHtml(text).toPlainText()

    def _font(self) -> QFont:
        font = self.font()
        if self.text().lstrip().lower().startswith("<b>"):
            font.setBold(True)
        return font

    def _metrics(self) -> QFontMetrics:
        return QFontMetrics(self._font())

    def is_elided(self) -> bool:
        width = self.contentsRect().width()
        return self._metrics().horizontalAdvance(self.plain_text()) > width

    def minimumSizeHint(self) -> QSize:
        # Room for a few characters around the ellipsis; QLabel would ask for all of it.
        hint = super().minimumSizeHint()
        return QSize(self._metrics().horizontalAdvance("MM…MM"), hint.height())

    def sizeHint(self) -> QSize:
        # A leftover label asks for no more than its minimum: what it gets beyond that
        # comes from its stretch, after its neighbours had their whole width.
        return self.minimumSizeHint() if self._leftover else super().sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.is_elided():
            super().paintEvent(event)
            return
        rect = self.contentsRect()
        metrics = self._metrics()
        shown = metrics.elidedText(self.plain_text(), Qt.TextElideMode.ElideMiddle, rect.width())
        painter = QPainter(self)
        painter.setFont(self._font())
        painter.setPen(self.palette().color(self.foregroundRole()))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(rect, align, shown)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and self.is_elided():
            # The whole text, and below it whatever tooltip the label was given.
            tip = "\n".join(t for t in (self.plain_text(), self.toolTip()) if t)
            assert isinstance(event, QHelpEvent)
            QToolTip.showText(event.globalPos(), tip, self)
            return True
        return super().event(event)
