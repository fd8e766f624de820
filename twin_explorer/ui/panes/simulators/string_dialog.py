"""Simulate a module from a pasted connection string, with the CA and proxy it needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.connection import strings
from twin_explorer.simulator import SimulatorError, Transport, parse_proxy, read_ca
from twin_explorer.simulator.errors import InvalidSettings
from twin_explorer.simulator.x509_files import X509Identity
from twin_explorer.ui.panes.simulators.common import error_label


class SimulateStringDialog(QDialog):
    chosen = Signal(str, object, object)  # connection string, Transport, X509Identity|None

    def __init__(
        self,
        local_transport: Callable[[], Transport | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("simulateStringDialog")
        self.setWindowTitle("Simulate from a Connection String")
        self.setMinimumWidth(560)
        self._local_transport = local_transport

        self.string_edit = QLineEdit()
        self.string_edit.setObjectName("simConnectionString")
        self.string_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.string_edit.setPlaceholderText("HostName=…;DeviceId=…;ModuleId=…;SharedAccessKey=…")
        self.use_local = QCheckBox("Reach it like the open local hub (its CA and proxy)")
        self.use_local.setObjectName("simUseLocalHub")
        self.use_local.setEnabled(local_transport() is not None)
        self.use_local.setChecked(self.use_local.isEnabled())
        self.ca_edit = QLineEdit()
        self.ca_edit.setObjectName("simCaFile")
        self.ca_edit.setPlaceholderText("system trust (Azure)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.proxy_edit = QLineEdit()
        self.proxy_edit.setObjectName("simProxy")
        self.proxy_edit.setPlaceholderText("none, e.g. 127.0.0.1:8880")
        self.cert_edit = QLineEdit()
        self.cert_edit.setObjectName("simCertFile")
        self.cert_edit.setPlaceholderText("for x509=true: the certificate (PEM)")
        self.cert_edit.setToolTip("The identity's X.509 certificate, PEM (its chain after it)")
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("simKeyFile")
        self.key_edit.setPlaceholderText("for x509=true: its private key (PEM)")
        self.key_edit.setToolTip(
            "Read into memory; the device SDK gets an encrypted copy that is removed at once"
        )
        self.key_pass = QLineEdit()
        self.key_pass.setObjectName("simKeyPassphrase")
        self.key_pass.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_pass.setPlaceholderText("passphrase, if the key is encrypted")
        self.key_pass.setToolTip("The passphrase of an encrypted key file")
        self.problem = error_label("simStringError")

        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Connection string:", self.string_edit)
        form.addRow("", self.use_local)
        form.addRow("CA certificate (PEM):", ca_row)
        form.addRow("HTTP proxy:", self.proxy_edit)
        for label, edit, title in (
            ("X.509 certificate:", self.cert_edit, "Certificate"),
            ("X.509 key:", self.key_edit, "Private key"),
        ):
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            pick = QPushButton("Browse…")
            pick.setToolTip(f"Choose the {title.lower()} file")
            pick.clicked.connect(lambda _=False, e=edit, t=title: self._pick(e, t))
            row.addWidget(pick)
            form.addRow(label, row)
        form.addRow("Key passphrase:", self.key_pass)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Simulate")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A module (or device) connection string with a key, or with x509=true "
            "and the identity's certificate and key files."
        )
        intro.setWordWrap(True)  # the dialog keeps its width; the sentence takes two lines
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.use_local.toggled.connect(self._local_toggled)
        self._local_toggled(self.use_local.isChecked())

    def _local_toggled(self, on: bool) -> None:
        self.ca_edit.setEnabled(not on)
        self.proxy_edit.setEnabled(not on)

    def _browse(self) -> None:
        dialog = QFileDialog(self, "CA certificate", "", "PEM certificates (*.pem *.crt);;All (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.ca_edit.setText)
        dialog.open()  # never exec(): no nested event loop

    def _pick(self, edit: QLineEdit, title: str) -> None:
        dialog = QFileDialog(self, title, "", "PEM files (*.pem *.crt *.key);;All (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(edit.setText)
        dialog.open()

    def x509(self) -> X509Identity:
        """The certificate and key files, read and checked (SimulatorError if not)."""
        cert, key = self.cert_edit.text().strip(), self.key_edit.text().strip()
        if not cert or not key:
            raise InvalidSettings("x509=true needs the certificate and key files.")
        try:
            cert_pem = Path(cert).read_text(encoding="ascii")
            key_pem = Path(key).read_bytes()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSettings(f"Could not read the certificate or key: {exc}.") from None
        passphrase = self.key_pass.text().encode() or None
        return X509Identity.from_pem(cert_pem, key_pem, passphrase)

    def transport(self) -> Transport:
        if self.use_local.isChecked():
            local = self._local_transport()
            if local is not None:
                return local
        ca = self.ca_edit.text().strip()
        proxy = self.proxy_edit.text().strip()
        return Transport(
            ca_pem=read_ca(ca) if ca else None, proxy=parse_proxy(proxy) if proxy else None
        )

    def accept(self) -> None:
        text = self.string_edit.text().strip()
        try:
            parsed = strings.parse(text)
            kind = parsed.kind
        except strings.ConnectionStringError as exc:
            self.problem.setText(f"The connection string cannot be used: {exc}.")
            return
        if kind == "service":
            self.problem.setText("This is a hub connection string; paste a module's.")
            return
        try:
            transport = self.transport()
            x509 = self.x509() if parsed.x509 else None
        except SimulatorError as error:
            self.problem.setText(error.text)
            return
        self.chosen.emit(text, transport, x509)
        super().accept()
