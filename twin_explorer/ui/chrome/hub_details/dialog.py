"""The local hub's details: what a script or an SDK sample needs to reach it.

The service connection string carries the hub owner's key: it stays masked until
Show is pressed, goes to the clipboard only from a Copy button, and is never logged.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import (
    QDesktopServices,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QGuiApplication,
    QResizeEvent,
    QTextOption,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service.local_hub import LocalHubInfo
from twin_explorer.ui.chrome.hub_details.snippets import masked, needs_proxy, snippets


def _value(text: str, name: str) -> QLineEdit:
    edit = QLineEdit(text)
    edit.setObjectName(name)
    edit.setReadOnly(True)
    edit.setCursorPosition(0)
    return edit


class WrappedValue(QPlainTextEdit):
    """A read-only value shown whole, wrapped over as many lines as it needs: a masked
    key at the end of a long connection string is in sight, not past the field's edge."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.setObjectName(name)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere)  # no spaces to break at
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.textChanged.connect(self._fit)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        """As tall as the wrapped text at the current width."""
        margin = int(self.document().documentMargin())
        width = max(1, self.viewport().width() - 2 * margin)
        flags = Qt.TextFlag.TextWrapAnywhere
        text = self.toPlainText()
        height = self.fontMetrics().boundingRect(0, 0, width, 10_000, flags, text).height()
        frame = self.contentsMargins()
        self.setFixedHeight(height + 2 * margin + frame.top() + frame.bottom())


def _button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    return button


class LocalHubDetailsDialog(QDialog):
    def __init__(self, info: LocalHubInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("localHubDetails")
        self.setWindowTitle("Local Hub Details")
        self._info = info

        self.connection_string = WrappedValue(masked(info.service_connection_string), "hubSecret")
        self.show_button = _button(
            "Show", "showHubSecret", "Show the connection string with its key"
        )
        self.show_button.setCheckable(True)
        self.show_button.toggled.connect(self._reveal)
        copy_secret = _button(
            "Copy", "copyHubSecret", "Copy the service connection string to the clipboard"
        )
        copy_secret.clicked.connect(
            lambda: self._copy(info.service_connection_string, "the service connection string")
        )
        secret_row = QHBoxLayout()
        secret_row.addWidget(self.connection_string, 1)
        secret_row.addWidget(self.show_button)
        secret_row.addWidget(copy_secret)

        ca_row = QHBoxLayout()
        ca_row.addWidget(_value(info.ca_cert, "hubCaPath"), 1)
        copy_ca = _button("Copy Path", "copyHubCa", "Copy the CA certificate's path")
        copy_ca.clicked.connect(lambda: self._copy(info.ca_cert, "the CA path"))
        ca_row.addWidget(copy_ca)
        data_row = QHBoxLayout()
        data_row.addWidget(_value(info.data_dir, "hubDataDir"), 1)
        open_data = _button("Open Folder", "openHubData", "Open the data folder")
        open_data.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(info.data_dir))
        )
        data_row.addWidget(open_data)

        # Side buttons one width, so the fields beside them end in one line.
        side = (self.show_button, copy_secret, copy_ca, open_data)
        width = max(button.sizeHint().width() for button in side)
        for button in side:
            button.setFixedWidth(width)

        form = QFormLayout()
        form.addRow("Service connection string:", secret_row)
        form.addRow("Device host name:", _value(info.hostname, "hubHostName"))
        form.addRow("REST port (service SDK):", _value(str(info.rest_port), "hubRestPort"))
        mqtt = "not listening" if info.mqtt_port is None else str(info.mqtt_port)
        form.addRow("MQTT port (devices):", _value(mqtt, "hubMqttPort"))
        proxy = "none" if info.proxy_port is None else str(info.proxy_port)
        form.addRow("Proxy port (HTTP CONNECT):", _value(proxy, "hubProxyPort"))
        form.addRow("CA certificate:", ca_row)
        form.addRow("Data folder:", data_row)

        note = QLabel(
            "Devices dial port 8883. "
            + (
                f"It is taken here, so Python device clients go through the proxy on port "
                f"{info.proxy_port}, and Node.js clients name port {info.mqtt_port} in "
                "GatewayHostName (the snippets do)."
                if needs_proxy(info)
                else "The hub listens there, so device clients connect directly."
            )
        )
        note.setWordWrap(True)

        self.snippet_tabs = QTabWidget()
        self.snippet_tabs.setObjectName("hubSnippets")
        self.snippet_views: dict[str, QPlainTextEdit] = {}
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for title, text in snippets(info).items():
            view = QPlainTextEdit(text)
            view.setReadOnly(True)
            view.setFont(mono)
            # Wrapped, so a masked key at the end of a long line is in sight too.
            view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
            view.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
            view.setObjectName(f"snippet{title.replace(' ', '').replace('.', '')}")
            self.snippet_views[title] = view
            self.snippet_tabs.addTab(view, title)
        copy_snippet = _button(
            "Copy Snippet", "copySnippet", "Copy the snippet shown, ready to paste"
        )
        copy_snippet.clicked.connect(self._copy_snippet)
        self.status = QLabel("")
        self.status.setObjectName("hubDetailsStatus")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(copy_snippet, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(QLabel("<b>Ready to paste</b>"))
        layout.addWidget(self.snippet_tabs, 1)
        layout.addLayout(bottom)
        self._open_wide_enough(mono)

    def _open_wide_enough(self, mono: QFont) -> None:
        """Wide enough that the masked Environment lines need no wrapping, where the
        screen allows: the mask then ends its line, in sight."""
        lines = snippets(self._info).environment.splitlines()
        text = QFontMetrics(mono).horizontalAdvance(max(lines, key=len))
        chrome = 2 * self.layout().contentsMargins().left() + 40  # tab frame, margins
        screen = self.screen().availableGeometry().width()
        self.resize(min(max(760, text + chrome), int(screen * 0.9)), 640)

    def _reveal(self, on: bool) -> None:
        info = self._info
        self.connection_string.setPlainText(
            info.service_connection_string if on else masked(info.service_connection_string)
        )
        self.show_button.setText("Hide" if on else "Show")
        for title, text in snippets(info, reveal=on).items():
            self.snippet_views[title].setPlainText(text)

    def _copy_snippet(self) -> None:
        title = self.snippet_tabs.tabText(self.snippet_tabs.currentIndex())
        text = dict(snippets(self._info, reveal=True).items())[title]
        self._copy(text, f"the {title} snippet")

    def _copy(self, text: str, what: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status.setText(f"Copied {what} to the clipboard.")
