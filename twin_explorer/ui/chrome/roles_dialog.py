"""Hub → Role Assignments…: the local hub's data-plane role assignments (Entra ID).

Lists who holds which role, assigns a role to a principal (an object id, or the hub's
``test-client`` / ``test-user``) and removes a selected assignment, through the local
hub's ``/_localhub/roles`` routes. On Azure IoT Hub these are Azure RBAC assignments,
made in the portal or with ``az role assignment``: the note says so.
"""

from __future__ import annotations

from collections.abc import Awaitable

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.connection.hub_roles import AZURE_STEPS, HubRoles, HubRolesError, RoleTable
from twin_explorer.ui.common.tasks import AsyncDialog

NOTE = (
    "Who may use this hub with a Microsoft Entra ID token, and for what. On Azure IoT Hub, "
    "data-plane roles are assigned in the portal or with <i>az role assignment</i>: "
    f'<a href="{AZURE_STEPS}">how</a>.'
)
TEST_PRINCIPALS = ("test-client", "test-user")


class RolesDialog(AsyncDialog):
    """The role assignments of the local hub ``roles`` reaches."""

    def __init__(self, roles: HubRoles, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._roles = roles
        self._working = False
        self.setObjectName("rolesDialog")
        self.setWindowTitle("Role Assignments")
        self.setMinimumWidth(720)

        note = QLabel(NOTE)
        note.setWordWrap(True)
        note.setOpenExternalLinks(True)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("roleTable")
        self.table.setHorizontalHeaderLabels(["Principal", "Object id", "Role"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.principal = QComboBox()
        self.principal.setObjectName("rolePrincipal")
        self.principal.setEditable(True)
        self.principal.addItems(TEST_PRINCIPALS)
        self.principal.setToolTip("An object id (GUID), test-client or test-user")
        self.role = QComboBox()
        self.role.setObjectName("roleChoice")
        self.assign_button = QPushButton("&Assign")
        self.assign_button.setObjectName("assignRoleButton")
        self.assign_button.clicked.connect(self._assign)
        self.remove_button = QPushButton("&Remove Selected")
        self.remove_button.setObjectName("removeRoleButton")
        self.remove_button.clicked.connect(self._remove)
        row = QHBoxLayout()
        row.addWidget(QLabel("Principal:"))
        row.addWidget(self.principal, 2)
        row.addWidget(QLabel("Role:"))
        row.addWidget(self.role, 2)
        row.addWidget(self.assign_button)

        self.status = QLabel("Reading the role assignments…")
        self.status.setObjectName("roleStatus")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._busy(True)
        self.tasks.spawn(self._run(self._roles.list(), "Read"))

    # -- actions ---------------------------------------------------------------------------

    def _assign(self) -> None:
        principal, role = self.principal.currentText().strip(), self.role.currentText()
        if not principal:
            self.status.setText("Type a principal: an object id, test-client or test-user.")
            return
        self._busy(True)
        self.tasks.spawn(self._run(self._roles.assign(principal, role), f"Assigned {role}"))

    def _remove(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        index = rows[0].row()
        principal_id = self.table.item(index, 1).text()
        role = self.table.item(index, 2).text()
        self._busy(True)
        self.tasks.spawn(self._run(self._roles.remove(principal_id, role), f"Removed {role}"))

    async def _run(self, call: Awaitable[RoleTable], done: str) -> None:
        try:
            table = await call
        except HubRolesError as exc:
            self.status.setText(f"The hub refused: {exc}")
            self._busy(False)
            return
        self._show(table)
        self.status.setText(f"{done}." if done != "Read" else "")
        self._busy(False)

    # -- view ------------------------------------------------------------------------------

    def _show(self, table: RoleTable) -> None:
        if self.role.count() == 0:
            self.role.addItems(table.roles)
        self.table.setRowCount(len(table.assignments))
        for i, row in enumerate(table.assignments):
            for j, text in enumerate((row.principal_name, row.principal_id, row.role)):
                self.table.setItem(i, j, QTableWidgetItem(text))

    def _busy(self, busy: bool) -> None:
        """One request at a time: the buttons wait for the hub's answer."""
        self._working = busy
        self.assign_button.setEnabled(not busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        selected = bool(self.table.selectionModel().selectedRows())
        self.remove_button.setEnabled(selected and not self._working)
