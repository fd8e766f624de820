"""Hub connections: add, edit, test, remove and pick.

A connection string is checked as it is typed (format, kind, policy) and can be tested
against the hub before it is saved. Its secret goes only to the OS keyring; when there
is no usable keyring the dialog says so and offers "Use for this session only". The text
the user typed stays in the field whatever fails.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
)

from twin_explorer.connection.profiles import (
    ProfileError,
    ProfileManager,
    check_events_connection_string,
    validate_name,
)
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.connection.strings import ConnectionStringError, parse
from twin_explorer.service.errors import ServiceError
from twin_explorer.service.local_hub import make_service
from twin_explorer.ui.chrome.confirm import confirm
from twin_explorer.ui.chrome.entra_dialog import EntraConnectionEditor
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.hub_session import LOCAL_HUB
from twin_explorer.ui.common.tasks import AsyncDialog

NameRole = Qt.ItemDataRole.UserRole + 1


def _error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    theme.text_colour(label, "error")
    label.hide()
    return label


def _message_bar(name: str) -> QLabel:
    """A word-wrapped message under the form: it adds height, never takes the fields'."""
    label = _error_label()
    label.setObjectName(name)
    theme.style(
        label,
        f"#{name} {{ color: $error; border: 1px solid palette(mid); border-radius: 3px;"
        " padding: 6px; }",
    )
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


def _grow_with_content(layout: QVBoxLayout) -> None:
    # The dialog's minimum follows its layout: a message that appears grows the dialog
    # instead of squeezing the form rows to less than their height.
    layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)


def _show(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


EDITOR_WIDTH = 560


class ConnectionEditor(AsyncDialog):
    """Add a connection, or replace an existing one's name and string."""

    def __init__(self, profiles: ProfileManager, existing: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionEditor")
        self.setWindowTitle("Edit Connection" if existing else "Add Connection")
        self._profiles = profiles
        self._existing = existing
        self.saved_name: str | None = None

        self.name_edit = QLineEdit(existing or "")
        self.name_edit.setObjectName("connectionName")
        self.name_error = _error_label()
        self.string_edit = QLineEdit()
        self.string_edit.setObjectName("connectionString")
        self.string_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.string_edit.setPlaceholderText(
            "HostName=<hub>.azure-devices.net;SharedAccessKeyName=<policy>;SharedAccessKey=<key>"
        )
        self.show_string = QCheckBox("Show")
        self.show_string.setToolTip("Show the connection string as typed")
        self.show_string.toggled.connect(
            lambda on: self.string_edit.setEchoMode(
                QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
            )
        )
        self.events_edit = QLineEdit()
        self.events_edit.setObjectName("eventsConnectionString")
        self.events_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.events_edit.setPlaceholderText("Optional: Endpoint=sb://…;EntityPath=… (for Events)")
        self.events_edit.setToolTip(
            "The hub's Event Hub-compatible connection string (Azure portal → your IoT hub "
            "→ Built-in endpoints), kept in the keyring: the Events pane reads with it"
        )
        if existing is not None:
            with contextlib.suppress(ProfileError, SecretStoreError):
                self.events_edit.setText(profiles.get_events_connection_string(existing) or "")
        self.string_error = _error_label()
        self.string_error.setObjectName("connectionStringError")
        self.string_info = QLabel()
        self.string_info.setObjectName("connectionStringInfo")
        self.test_button = QPushButton("Test")
        self.test_button.setObjectName("testConnection")
        self.test_button.setToolTip("Ask the hub whether this connection string works")
        self.test_result = QLabel()
        self.test_result.setObjectName("testResult")
        self.test_result.setWordWrap(True)
        self.save_error = _message_bar("saveError")
        self.session_only_button = QPushButton("Use for This Session Only")
        self.session_only_button.setObjectName("sessionOnly")
        self.session_only_button.setToolTip(
            "Keep the connection in memory until Twin Explorer quits; nothing is written"
        )
        self.session_only_button.hide()

        string_row = QHBoxLayout()
        string_row.addWidget(self.string_edit, 1)
        string_row.addWidget(self.show_string)
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("", self.name_error)
        form.addRow("Connection string:", string_row)
        form.addRow("", self.string_error)
        form.addRow("", self.string_info)
        form.addRow("Events:", self.events_edit)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        _grow_with_content(layout)
        intro = QLabel(
            "Paste a service connection string from the Azure portal (IoT Hub → Shared "
            "access policies). It is kept in the system keyring, never in a file."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(test_row)
        layout.addWidget(self.save_error)
        # Beside Save: one row of answers, not a lone button above them.
        self.buttons.addButton(self.session_only_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout.addWidget(self.buttons)

        self.name_edit.textChanged.connect(self._validate)
        self.string_edit.textChanged.connect(self._validate)
        self.test_button.clicked.connect(self.test)
        self.session_only_button.clicked.connect(lambda: self.save(session_only=True))
        self._validate()
        # The layout sets the minimum (it grows with messages); open at the width asked.
        self.resize(max(self.minimumWidth(), EDITOR_WIDTH), self.sizeHint().height())

    # -- validation ----------------------------------------------------------------------

    def _validate(self) -> bool:
        name_ok = string_ok = True
        try:
            name = validate_name(self.name_edit.text())
            if name == LOCAL_HUB:
                raise ProfileError(f"'{LOCAL_HUB}' is the built-in connection's name")
            _show(self.name_error, "")
        except ProfileError as exc:
            name_ok = False
            _show(self.name_error, str(exc) if self.name_edit.text() else "")
        text = self.string_edit.text().strip()
        self.string_info.setText("")
        if not text:
            string_ok = False
            _show(self.string_error, "")
        else:
            try:
                cs = parse(text)
                if cs.kind != "service" or not cs.shared_access_key:
                    raise ConnectionStringError(
                        f"this is a {cs.kind} connection string; a hub connection needs a "
                        "service connection string with SharedAccessKeyName and SharedAccessKey"
                    )
                _show(self.string_error, "")
                self.string_info.setText(f"Hub {cs.host_name}, policy {cs.shared_access_key_name}")
            except ConnectionStringError as exc:
                string_ok = False
                _show(self.string_error, _sentence(str(exc)))
        self.save_button.setEnabled(name_ok and string_ok)
        self.test_button.setEnabled(string_ok)
        self.test_result.setText("")
        return name_ok and string_ok

    # -- test ----------------------------------------------------------------------------

    def test(self) -> None:
        self.test_button.setEnabled(False)
        theme.text_colour(self.test_result, None)
        self.test_result.setText("Testing…")
        self.tasks.spawn(self._test(self.string_edit.text().strip()))

    async def _test(self, connection_string: str) -> None:
        try:
            async with make_service(connection_string) as service:
                stats = await service.check()
            theme.text_colour(self.test_result, "ok")
            self.test_result.setText(
                f"Connected: {stats.total_devices:,} devices on {service.host}."
            )
        except ServiceError as exc:
            theme.text_colour(self.test_result, "error")
            self.test_result.setText(exc.text)
        finally:
            self.test_button.setEnabled(True)

    # -- save ----------------------------------------------------------------------------

    def save(self, session_only: bool = False) -> None:
        if not self._validate():
            return
        name = self.name_edit.text().strip()
        text = self.string_edit.text().strip()
        events = self.events_edit.text().strip()
        try:
            if events:  # checked before anything changes
                check_events_connection_string(events)
            if self._existing is not None:
                self._profiles.remove(self._existing)
            self._profiles.add(name, text, session_only=session_only)
            self._profiles.set_events_connection_string(name, events)
        except SecretStoreError as exc:
            _show(
                self.save_error,
                f"{_sentence(str(exc))} Nothing was saved. You can still use this connection "
                "until Twin Explorer quits.",
            )
            self.session_only_button.show()
            self._fit()
            return
        except (ProfileError, ConnectionStringError) as exc:
            _show(self.save_error, _sentence(str(exc)))
            self._fit()
            return
        self.saved_name = name
        self.accept()

    def _fit(self) -> None:
        """Grow to what the content asks for (a window manager may not do it for us)."""
        self.layout().activate()
        hint = self.sizeHint()
        self.resize(max(self.width(), hint.width()), max(self.height(), hint.height()))


class ConnectionsDialog(QDialog):
    """Pick the hub to open; manage saved connections."""

    connectRequested = Signal(str)

    def __init__(self, profiles: ProfileManager, current: str | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("connectionsDialog")
        self.setWindowTitle("Hub Connections")
        self.setMinimumSize(520, 340)
        self._profiles = profiles
        self.list = QListWidget()
        self.list.setObjectName("connectionList")
        self.error = _error_label()
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Add a hub by its service connection string")
        self.add_entra_button = QPushButton("Add Entra ID…")
        self.add_entra_button.setToolTip(
            "Add a hub you sign in to with Microsoft Entra ID (no shared access key)"
        )
        self.edit_button = QPushButton("Edit…")
        self.edit_button.setToolTip("Change the selected connection's name or string")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget the selected connection and delete its key")
        self.connect_button = QPushButton("Connect")
        self.connect_button.setToolTip("Open the selected hub in the window")
        self.connect_button.setDefault(True)
        side = QVBoxLayout()
        for button in (
            self.add_button,
            self.add_entra_button,
            self.edit_button,
            self.remove_button,
        ):
            side.addWidget(button)
        side.addStretch(1)
        side.addWidget(self.connect_button)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        _grow_with_content(layout)
        layout.addLayout(body, 1)
        layout.addWidget(self.error)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

        self.add_button.clicked.connect(lambda: self._edit(None))
        self.add_entra_button.clicked.connect(lambda: self._edit(None, entra=True))
        self.edit_button.clicked.connect(lambda: self._edit(self.selected_name()))
        self.remove_button.clicked.connect(self._remove)
        self.connect_button.clicked.connect(self._connect)
        self.list.itemDoubleClicked.connect(lambda _item: self._connect())
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.refresh(select=current)

    def refresh(self, select: str | None = None) -> None:
        self.list.clear()
        local = QListWidgetItem(f"{LOCAL_HUB} (built-in, offline, demo data)")
        local.setData(NameRole, LOCAL_HUB)
        self.list.addItem(local)
        try:
            profiles = self._profiles.list()
        except ProfileError as exc:
            _show(self.error, _sentence(str(exc)))
            profiles = []
        for profile in profiles:
            extra = " · this session only" if profile.session_only else ""
            how = "Entra ID" if profile.entra is not None else profile.policy
            item = QListWidgetItem(f"{profile.name} — {profile.host} ({how}){extra}")
            item.setData(NameRole, profile.name)
            self.list.addItem(item)
        for row in range(self.list.count()):
            if self.list.item(row).data(NameRole) == (select or LOCAL_HUB):
                self.list.setCurrentRow(row)
        # Wide enough for every name in full: the dialog grows rather than cutting them.
        frame = 2 * self.list.frameWidth() + self.list.verticalScrollBar().sizeHint().width()
        self.list.setMinimumWidth(self.list.sizeHintForColumn(0) + frame + 8)
        self._update_buttons()

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(NameRole) if item else None

    def _update_buttons(self) -> None:
        name = self.selected_name()
        saved = name is not None and name != LOCAL_HUB
        self.edit_button.setEnabled(saved)
        self.remove_button.setEnabled(saved)
        self.connect_button.setEnabled(name is not None)

    def _edit(
        self, name: str | None, *, entra: bool = False
    ) -> ConnectionEditor | EntraConnectionEditor:
        if name is not None:
            entra = self._profiles.get(name).entra is not None
        kind = EntraConnectionEditor if entra else ConnectionEditor
        editor = kind(self._profiles, existing=name, parent=self)
        editor.accepted.connect(lambda: self.refresh(select=editor.saved_name))
        editor.open()
        return editor

    def _remove(self) -> None:
        name = self.selected_name()
        if not name or name == LOCAL_HUB:
            return
        confirm(
            self,
            "Remove Connection",
            f"Remove the connection '{name}'? "
            + (
                "Twin Explorer forgets how to sign in to it (it holds no key)."
                if self._profiles.get(name).entra is not None
                else "Its key is deleted from the system keyring."
            ),
            lambda: self._remove_now(name),
            yes_text="Remove",
        )

    def _remove_now(self, name: str) -> None:
        try:
            self._profiles.remove(name)
        except (ProfileError, SecretStoreError) as exc:
            _show(self.error, _sentence(str(exc)))
            return
        self.refresh()

    def _connect(self) -> None:
        name = self.selected_name()
        if name:
            self.connectRequested.emit(name)
            self.accept()


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
