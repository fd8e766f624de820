"""Identity management from the menus and the tree's context menu.

Each action acts on the tree's selection, is enabled only when that makes sense, and
reports failures in plain words through the window's message bar.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from twin_explorer.service.browse import DeviceRow, ModuleRow
from twin_explorer.service.errors import ServiceError
from twin_explorer.service.hub import HubService
from twin_explorer.service.method_calls import MethodCalls
from twin_explorer.service.models import Identity
from twin_explorer.ui.chrome.certificate_dialog import CertificateDialog
from twin_explorer.ui.chrome.confirm import confirm
from twin_explorer.ui.chrome.identity_dialogs import ConnectionStringDialog, CreateIdentityDialog
from twin_explorer.ui.chrome.method_dialog import MethodDialog
from twin_explorer.ui.chrome.pane_action import PaneAction, ToolbarEntry
from twin_explorer.ui.chrome.window_actions import METHOD
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.tree.tree_pane import TreePane

Row = DeviceRow | ModuleRow


def _ids(row: Row) -> tuple[str, str | None]:
    return (row.device_id, row.module_id or None)


class IdentityActions(QObject):
    def __init__(
        self,
        window: QWidget,
        tree: TreePane,
        report: Callable[[object], None],
        notify: Callable[[str], None],
        method_calls: MethodCalls | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._tree = tree
        self._report = report
        self._notify = notify
        self._service: HubService | None = None
        self._tasks = Tasks(on_error=report)
        # Method calls outlive their dialogs: each ends in the patch log and the status line.
        self.method_calls = method_calls if method_calls is not None else MethodCalls()
        self.method_calls.on_finished = lambda call: notify(call.summary())

        def action(text: str, slot, name: str, shortcut: str | None = None) -> QAction:
            act = QAction(text, window)
            act.setObjectName(name)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            return act

        self.new_device = action("&New Device…", self.create_device, "newDevice", "Ctrl+N")
        self.new_module = action("New &Module…", self.create_module, "newModule", "Ctrl+Shift+N")
        self.delete = action("&Delete…", self.delete_selected, "deleteIdentity", "Del")
        self.enable = action("&Enable Device", lambda: self.set_enabled(True), "enableDevice")
        self.disable = action("D&isable Device", lambda: self.set_enabled(False), "disableDevice")
        self.regenerate = action("Regenerate &Keys…", self.regenerate_keys, "regenerateKeys")
        self.copy_primary = action(
            "Copy &Primary Connection String…", lambda: self.show_string("primary"), "copyPrimary"
        )
        self.copy_secondary = action(
            "Copy &Secondary Connection String…",
            lambda: self.show_string("secondary"),
            "copySecondary",
        )
        self.method = action("Invoke Direct &Method…", self.invoke_method, "invokeMethod", "Ctrl+M")
        self.certificate = action("Cer&tificate…", self.show_certificate, "showCertificate")
        self.certificate.setToolTip(
            "The X.509 certificate: thumbprints, subject, issuer, expiry; export it"
        )
        self.identity_actions = [
            self.new_device,
            self.new_module,
            self.delete,
            self.enable,
            self.disable,
            self.regenerate,
            self.copy_primary,
            self.copy_secondary,
            self.certificate,
            self.method,
        ]
        tree.contextMenuRequested.connect(self._context_menu)
        tree.selectedRowsChanged.connect(self.update)
        tree.selectionChanged.connect(lambda _row: self.update())
        tree.model.refreshed.connect(self.update)  # the selected row, read again
        self.update()

    def pane_actions(self) -> list[PaneAction]:
        """Hub: new device, delete, enable, disable; Module: the module's actions."""
        hub = [self.new_device, self.delete, self.enable, self.disable]
        module = [
            self.new_module,
            self.regenerate,
            self.copy_primary,
            self.copy_secondary,
            self.certificate,
        ]
        return [
            *(PaneAction("Hub", act, separator_before=act is hub[0]) for act in hub),
            *(PaneAction("Module", act) for act in module),
            PaneAction("Module", self.method, toolbar=ToolbarEntry(METHOD, "Invoke Method")),
        ]

    # -- state ---------------------------------------------------------------------------

    def set_service(self, service: HubService | None) -> None:
        self._service = service
        self.update()

    def update(self) -> None:
        has_hub = self._service is not None
        rows = self._tree.selected_rows()
        current = self._tree.current_row()
        device = current if isinstance(current, DeviceRow) and not current.is_module else None
        single = current if len(rows) <= 1 else None
        self.new_device.setEnabled(has_hub)
        self.new_module.setEnabled(has_hub and device is not None)
        self.delete.setEnabled(has_hub and bool(rows))
        self.enable.setEnabled(has_hub and device is not None and device.status == "disabled")
        self.disable.setEnabled(has_hub and device is not None and device.status != "disabled")
        sas = single is not None and single.auth_type == "sas"
        for act in (self.regenerate, self.copy_primary, self.copy_secondary):
            act.setEnabled(has_hub and sas)
        self.method.setEnabled(has_hub and single is not None)
        x509 = single is not None and single.auth_type in ("selfSigned", "certificateAuthority")
        self.certificate.setEnabled(has_hub and x509)

    def _context_menu(self, at: QPoint) -> None:
        menu = QMenu(self._tree)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for act in self.identity_actions:
            menu.addAction(act)
            if act in (self.new_module, self.disable, self.certificate):
                menu.addSeparator()
        menu.popup(at)

    # -- helpers -------------------------------------------------------------------------

    async def _identity(self, row: Row) -> Identity:
        assert self._service is not None
        device_id, module_id = _ids(row)
        if module_id:
            return await self._service.get_module(device_id, module_id)
        return await self._service.get_device(device_id)

    def _done(self, message: str) -> None:
        self._notify(message)
        self._tree.reload()

    # -- create --------------------------------------------------------------------------

    def create_device(self) -> CreateIdentityDialog | None:
        if self._service is None:
            return None
        dialog = CreateIdentityDialog(self._service, parent=self._window)
        dialog.accepted.connect(lambda: self._done(f"Created device '{dialog.created.label}'."))
        dialog.open()
        return dialog

    def create_module(self) -> CreateIdentityDialog | None:
        row = self._tree.current_row()
        if self._service is None or not isinstance(row, DeviceRow) or row.is_module:
            return None
        dialog = CreateIdentityDialog(self._service, device_id=row.device_id, parent=self._window)
        dialog.accepted.connect(lambda: self._done(f"Created module '{dialog.created.label}'."))
        dialog.open()
        return dialog

    # -- delete --------------------------------------------------------------------------

    def delete_selected(self) -> None:
        rows = self._tree.selected_rows()
        if self._service is None or not rows:
            return
        labels = [row.label for row in rows]
        shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
        what = "identity" if len(rows) == 1 else f"{len(rows)} identities"
        confirm(
            self._window,
            "Delete",
            f"Delete {what}: {shown}? Deleting a device also deletes its modules. "
            "This cannot be undone.",
            lambda: self._tasks.spawn(self._delete(rows)),
            yes_text="Delete",
            detail="\n".join(labels),
        )

    async def _delete(self, rows: list[Row]) -> None:
        assert self._service is not None
        # A module whose device is deleted too goes with it.
        devices = {
            row.device_id for row in rows if isinstance(row, DeviceRow) and not row.is_module
        }
        failures: list[str] = []
        deleted: list[tuple[str, str | None]] = []
        for row in rows:
            device_id, module_id = _ids(row)
            if module_id and device_id in devices:
                continue
            try:
                if module_id:
                    await self._service.delete_module(device_id, module_id)
                else:
                    await self._service.delete_device(device_id)
                deleted.append((device_id, module_id))
            except ServiceError as exc:
                failures.append(exc.text)
        self._notify(f"Deleted {len(deleted)} identit{'y' if len(deleted) == 1 else 'ies'}.")
        self._tree.identities_deleted(deleted)
        if failures:
            self._report(ServiceError(" ".join(failures[:3])))

    # -- status and keys -----------------------------------------------------------------

    def set_enabled(self, enabled: bool) -> None:
        row = self._tree.current_row()
        if self._service is None or not isinstance(row, DeviceRow) or row.is_module:
            return
        self._tasks.spawn(self._set_enabled(row, enabled))

    async def _set_enabled(self, row: DeviceRow, enabled: bool) -> None:
        assert self._service is not None
        identity = await self._identity(row)
        await self._service.set_device_enabled(identity, enabled)
        self._done(f"Device '{row.device_id}' is now {'enabled' if enabled else 'disabled'}.")

    def regenerate_keys(self) -> None:
        row = self._tree.current_row()
        if self._service is None or row is None:
            return
        choices = {"Primary key": "primary", "Secondary key": "secondary", "Both keys": "both"}
        dialog = QInputDialog(self._window)
        dialog.setObjectName("regenerateDialog")
        dialog.setWindowTitle("Regenerate Keys")
        dialog.setLabelText(
            f"Which keys of {row.label}? Anything still using an old key is disconnected."
        )
        dialog.setComboBoxItems(list(choices))
        dialog.setComboBoxEditable(False)
        dialog.textValueSelected.connect(
            lambda choice: self._tasks.spawn(self._regenerate(row, choices[choice]))
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    async def _regenerate(self, row: Row, which: str) -> None:
        assert self._service is not None
        identity = await self._identity(row)
        await self._service.regenerate_keys(identity, which)
        self._notify(f"New {which} key{'s' if which == 'both' else ''} for {row.label}.")

    # -- connection strings and methods --------------------------------------------------

    def show_string(self, which: str) -> None:
        row = self._tree.current_row()
        if self._service is not None and row is not None:
            self._tasks.spawn(self._show_string(row, which))

    async def _show_string(self, row: Row, which: str) -> ConnectionStringDialog:
        assert self._service is not None
        identity = await self._identity(row)
        text = self._service.connection_string(identity, which)
        dialog = ConnectionStringDialog(f"{row.label} ({which})", text, parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.last_string_dialog = dialog
        return dialog

    def show_certificate(self) -> None:
        row = self._tree.current_row()
        if self._service is not None and row is not None:
            self._tasks.spawn(self._show_certificate(row))

    async def _show_certificate(self, row: Row) -> CertificateDialog:
        assert self._service is not None
        identity = await self._identity(row)
        dialog = CertificateDialog(identity, self._service.device_host, parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.last_certificate_dialog = dialog
        return dialog

    def invoke_method(self) -> MethodDialog | None:
        row = self._tree.current_row()
        if self._service is None or row is None:
            return None
        device_id, module_id = _ids(row)
        dialog = MethodDialog(
            self._service, device_id, module_id, parent=self._window, calls=self.method_calls
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()  # modeless: the window (e.g. a simulator's answer prompt) stays usable
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    async def aclose(self) -> None:
        await self._tasks.cancel_all()
        await self.method_calls.aclose()
