"""Add or edit a hub connection that signs in with Microsoft Entra ID (no key).

The person names the hub's host and picks how to sign in; Sign In runs the credential
(off the UI thread) and shows who signed in, then asks the hub for its device count, so
a missing role is said here, with the role to grant. Save keeps the choices and the
sign-in record (account and ids, never a token) in the connection list; the tokens stay
in azure-identity's cache in the system keyring.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import replace
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from twin_explorer.connection.profiles import ProfileError, ProfileManager, validate_name
from twin_explorer.service import entra
from twin_explorer.service.errors import ServiceError
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import AsyncDialog

EDITOR_WIDTH = 600


class EntraConnectionEditor(AsyncDialog):
    """Name, host and credential of an Entra ID connection; Sign In; Save."""

    _codeShown = Signal(str, str)  # verification URL, user code (from a worker thread)

    def __init__(self, profiles: ProfileManager, existing: str | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("entraConnectionEditor")
        self.setWindowTitle(
            "Edit Entra ID Connection" if existing else "Add Entra ID Connection"
        )
        self._profiles = profiles
        self._existing = existing
        self._record: str | None = None
        self.saved_name: str | None = None
        fields: dict[str, str] = {}
        host = ""
        if existing is not None:
            profile = profiles.get(existing)
            fields, host = dict(profile.entra or {}), profile.host
            self._record = fields.get("record")

        self.name_edit = self._line("entraName", existing or "", "")
        self.host_edit = self._line("entraHost", host, "<hub>.azure-devices.net")
        self.host_edit.setToolTip("The hub's host name, as in the portal's Overview")
        self.credential_box = QComboBox()
        self.credential_box.setObjectName("entraCredential")
        self.credential_box.setToolTip("How Twin Explorer gets a token for your account")
        for key, text in entra.CREDENTIALS.items():
            self.credential_box.addItem(text, key)
        index = self.credential_box.findData(fields.get("credential", "browser"))
        self.credential_box.setCurrentIndex(max(index, 0))
        self.tenant_edit = self._line(
            "entraTenant", fields.get("tenant_id", ""), "Tenant ID or domain (optional)"
        )
        self.tenant_edit.setToolTip("The directory to sign in to; empty: your home tenant")
        self.authority_edit = self._line(
            "entraAuthority",
            fields.get("authority", ""),
            "https://login.microsoftonline.com (optional: other clouds, a local hub)",
        )
        self.authority_edit.setToolTip(
            "The sign-in authority for a national cloud, or a local hub's authority"
        )
        self.ca_edit = self._line(
            "entraCa", fields.get("ca_cert", ""), "CA certificate to trust (optional, PEM file)"
        )
        self.ca_edit.setToolTip("Only for a hub with its own CA, such as a local hub (ca.pem)")

        self.sign_in_button = QPushButton("Sign In")
        self.sign_in_button.setObjectName("entraSignIn")
        self.sign_in_button.setToolTip("Sign in now and check that the hub lets you in")
        self.account_label = QLabel()
        self.account_label.setObjectName("entraAccount")
        self.account_label.setWordWrap(True)
        self.code_label = QLabel()
        self.code_label.setObjectName("entraDeviceCode")
        self.code_label.setWordWrap(True)
        self.code_label.setTextFormat(Qt.TextFormat.RichText)
        self.code_label.setOpenExternalLinks(True)  # the sign-in page, in the browser
        self.code_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction
            | Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.code_label.setToolTip("Open the page, sign in there and enter this code")
        self.code_label.hide()
        self.result_label = QLabel()
        self.result_label.setObjectName("entraResult")
        self.result_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Hub host name:", self.host_edit)
        form.addRow("Sign in with:", self.credential_box)
        form.addRow("Tenant:", self.tenant_edit)
        form.addRow("Authority:", self.authority_edit)
        form.addRow("CA certificate:", self.ca_edit)
        sign_in_row = QHBoxLayout()
        sign_in_row.addWidget(self.sign_in_button)
        sign_in_row.addWidget(self.account_label, 1)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setToolTip("Keep this connection (no key or token is written)")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        intro = QLabel(
            "Sign in with your Microsoft Entra ID account instead of a shared access key; "
            "this also works on hubs with shared keys disabled. Your account needs a "
            "data-plane role on the hub: IoT Hub Data Reader to browse, Twin Contributor "
            "or Data Contributor to edit. Tokens stay in the system keyring."
        )
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(sign_in_row)
        layout.addWidget(self.code_label)
        layout.addWidget(self.result_label)
        layout.addWidget(self.buttons)

        self.name_edit.textChanged.connect(self._validate)
        self.host_edit.textChanged.connect(self._validate)
        self.sign_in_button.clicked.connect(self.sign_in)
        self._codeShown.connect(self._show_code)
        self._show_account(entra.account_of(self._record))
        self._validate()
        self.resize(max(self.minimumWidth(), EDITOR_WIDTH), self.sizeHint().height())

    def _line(self, name: str, text: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(text)
        edit.setObjectName(name)
        if placeholder:
            edit.setPlaceholderText(placeholder)
        return edit

    # -- state ---------------------------------------------------------------------------

    def settings(self) -> entra.EntraSettings:
        return entra.EntraSettings(
            host=self.host_edit.text().strip(),
            credential=self.credential_box.currentData(),
            tenant_id=self.tenant_edit.text().strip() or None,
            authority=self.authority_edit.text().strip() or None,
            ca_cert=self.ca_edit.text().strip() or None,
            record=self._record,
        )

    def _validate(self) -> bool:
        try:
            validate_name(self.name_edit.text())
            name_ok = True
        except ProfileError:
            name_ok = False
        host_ok = bool(self.host_edit.text().strip())
        self.save_button.setEnabled(name_ok and host_ok)
        self.sign_in_button.setEnabled(host_ok)
        return name_ok and host_ok

    def _show_account(self, account: entra.Account | None) -> None:
        if account is None:
            self.account_label.setText("Not signed in yet.")
        else:
            self.account_label.setText(
                f"Signed in as {account.username} (tenant {account.tenant_id})"
            )

    def _say(self, text: str, colour: str | None) -> None:
        theme.text_colour(self.result_label, colour)
        self.result_label.setText(text)

    # -- sign in -------------------------------------------------------------------------

    def sign_in(self) -> None:
        self.sign_in_button.setEnabled(False)
        self._say("Signing in…", None)
        self.tasks.spawn(self._sign_in(self.settings()))

    def _prompt(self, url: str, code: str, _expires: datetime) -> None:
        self._codeShown.emit(url, code)  # queued to the UI thread

    def _show_code(self, url: str, code: str) -> None:
        link, shown = html.escape(url, quote=True), html.escape(code)
        self.code_label.setText(
            f"To sign in, open <a href=\"{link}\">{html.escape(url)}</a> and enter the code "
            f"<b style='font-size: large'>{shown}</b>"
        )
        self.code_label.show()

    async def _sign_in(self, settings: entra.EntraSettings) -> None:
        fresh = replace(settings, record=None)
        try:
            credential = entra.make_credential(fresh, prompt=self._prompt)
            record, account = await asyncio.to_thread(entra.sign_in, credential)
            self._record = record
            self._show_account(account)
            self.code_label.hide()
            service, note = await asyncio.to_thread(
                entra.open_service, replace(fresh, record=record)
            )
            async with service:
                stats = await service.check()
            kept = f" Tokens are kept {note}." if note else ""
            self._say(f"Connected: {stats.total_devices:,} devices on {service.host}.{kept}", "ok")
        except ServiceError as exc:
            self._say(exc.text, "error")
        except Exception as exc:  # azure-identity's sign-in errors, in its own words
            self._say(f"Sign-in did not work: {_first_line(exc)}", "error")
        # Not in a finally: a dialog closed meanwhile cancelled this, and is gone.
        self._validate()

    # -- save ----------------------------------------------------------------------------

    def save(self) -> None:
        if not self._validate():
            return
        name = self.name_edit.text().strip()
        settings = self.settings()
        try:
            if self._existing is not None:
                self._profiles.remove(self._existing)
            self._profiles.add_entra(name, settings.host, entra.fields_of(settings))
        except ProfileError as exc:
            self._say(str(exc), "error")
            return
        self.saved_name = name
        self.accept()


def _first_line(exc: BaseException) -> str:
    from twin_explorer.connection.redact import redact

    text = redact(str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__
