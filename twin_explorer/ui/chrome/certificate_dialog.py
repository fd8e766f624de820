"""An X.509 identity's certificate: what the hub registered, what this app keeps, export.

Shows the registered thumbprints, and, when the app made the certificate (its key is in
the keyring), its subject, issuer, SHA-1 and SHA-256 thumbprints and expiry, warning
when it runs out within a month. Export writes the certificate with its key encrypted
by a passphrase the person chooses (PEM), or a PFX with that passphrase.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
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

from twin_explorer.connection import certificates as certs
from twin_explorer.connection.hub_certificates import AZURE_PORTAL_STEPS
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.service.identity_certificates import CertificateFacts, IdentityCertificates
from twin_explorer.service.models import Identity
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import AsyncDialog

CA_NOTE = (
    "A CA-signed identity connects with any certificate whose CN is "
    "<b>{cn}</b>, issued by a CA the hub holds and has verified. On Azure IoT Hub, CA "
    "certificates are uploaded and verified in the management plane (the portal or ARM), "
    f'not through this app: <a href="{AZURE_PORTAL_STEPS}">the portal steps</a>.'
)


def _value(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    return label


class CertificateDialog(AsyncDialog):
    """The certificate of ``identity`` on the hub ``host`` (its keyring entry's hub)."""

    def __init__(
        self,
        identity: Identity,
        host: str,
        certificates: IdentityCertificates | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._identity = identity
        self._host = host
        self._certificates = certificates or IdentityCertificates()
        self.issued: certs.Issued | None = None
        self.setObjectName("certificateDialog")
        self.setWindowTitle(f"Certificate of {identity.label}")
        self.setMinimumWidth(780)  # a SHA-256 thumbprint is 64 characters on one line

        form = QFormLayout()
        kind = {"selfSigned": "X.509 self-signed", "certificateAuthority": "X.509 CA-signed"}
        form.addRow("Authentication:", _value(kind.get(identity.auth_type, identity.auth_type)))
        if identity.auth_type == "selfSigned":
            form.addRow("Registered primary:", _value(identity.primary_thumbprint or "—"))
            form.addRow("Registered secondary:", _value(identity.secondary_thumbprint or "—"))
        self.state = _value("Reading the keyring…", "certificateState")
        form.addRow("In this app:", self.state)
        self.subject = _value(name="certificateSubject")
        self.issuer = _value(name="certificateIssuer")
        self.sha1 = _value(name="certificateSha1")
        self.sha256 = _value(name="certificateSha256")
        self.expiry = _value(name="certificateExpiry")
        for label, widget in (
            ("Subject:", self.subject),
            ("Issuer:", self.issuer),
            ("SHA-1 thumbprint:", self.sha1),
            ("SHA-256 thumbprint:", self.sha256),
            ("Expiry:", self.expiry),
        ):
            form.addRow(label, widget)

        self.passphrase = QLineEdit()
        self.passphrase.setObjectName("exportPassphrase")
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("passphrase for the exported key")
        self.passphrase.setToolTip("The exported private key is encrypted with this passphrase")
        self.export_pem_button = QPushButton("Export PEM…")
        self.export_pem_button.setToolTip(
            "Save the certificate and its key (encrypted with the passphrase) in one PEM file"
        )
        self.export_pfx_button = QPushButton("Export PFX…")
        self.export_pfx_button.setToolTip("Save a PKCS#12 (.pfx) file protected by the passphrase")
        export_row = QHBoxLayout()
        export_row.addWidget(self.passphrase, 1)
        export_row.addWidget(self.export_pem_button)
        export_row.addWidget(self.export_pfx_button)
        form.addRow("Export:", export_row)
        self.result = _value(name="exportResult")
        self._form = form
        self._certificate_rows = (
            self.subject,
            self.issuer,
            self.sha1,
            self.sha256,
            self.expiry,
            export_row,
        )

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.result)
        if identity.auth_type == "certificateAuthority":
            note = _value(
                CA_NOTE.format(cn=certs.identity_cn(identity.device_id, identity.module_id))
            )
            note.setOpenExternalLinks(True)
            note.setTextFormat(Qt.TextFormat.RichText)
            layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

        self.passphrase.textChanged.connect(self._update)
        self.export_pem_button.clicked.connect(lambda: self._choose("pem"))
        self.export_pfx_button.clicked.connect(lambda: self._choose("pfx"))
        self._update()
        self.tasks.spawn(self._load())

    async def _load(self) -> None:
        ident = self._identity
        try:
            issued = await asyncio.to_thread(
                self._certificates.load, self._host, ident.device_id, ident.module_id
            )
        except SecretStoreError as exc:
            self.state.setText(f"The keyring could not be read: {exc}.")
            theme.text_colour(self.state, "error")
            return
        if issued is None:
            self.state.setText(
                "Its key is not in this app's keyring: the certificate was made elsewhere."
            )
            self.adjustSize()  # the certificate rows are hidden
            return
        self.show_certificate(issued)

    def show_certificate(self, issued: certs.Issued) -> None:
        self.issued = issued
        facts = CertificateFacts.of(issued.cert)
        self.state.setText("Certificate and key kept in your system keyring")
        self.subject.setText(facts.subject)
        self.issuer.setText(facts.issuer)
        self.sha1.setText(facts.sha1)
        self.sha256.setText(facts.sha256)
        self.expiry.setText(facts.expiry_text())
        theme.text_colour(self.expiry, "warning" if facts.expiring() else None)
        self._update()

    def _update(self) -> None:
        for row in self._certificate_rows:  # nothing to show without the certificate
            self._form.setRowVisible(row, self.issued is not None)
        ok = self.issued is not None and bool(self.passphrase.text())
        self.export_pem_button.setEnabled(ok)
        self.export_pfx_button.setEnabled(ok)

    def _choose(self, kind: str) -> None:
        name = self._identity.label.replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export {kind.upper()}", f"{name}.{kind}", f"{kind.upper()} (*.{kind})"
        )
        if path:
            self.export(Path(path), kind)

    def export(self, path: Path, kind: str) -> None:
        """Write the export to ``path``; the result line says where or why not."""
        assert self.issued is not None
        passphrase = self.passphrase.text()
        try:
            if kind == "pfx":
                data = IdentityCertificates.export_pfx(
                    self.issued, passphrase, self._identity.label
                )
            else:
                cert_pem, key_pem = IdentityCertificates.export_pem(self.issued, passphrase)
                data = cert_pem.encode("ascii") + key_pem
            path.write_bytes(data)
            path.chmod(0o600)
        except (OSError, ValueError) as exc:
            self.result.setText(f"Not exported: {exc}")
            theme.text_colour(self.result, "error")
            return
        self.result.setText(f"Exported to {path}; the key is encrypted with your passphrase.")
        theme.text_colour(self.result, "ok")
