"""The "Simulated Modules" dock: one tab per simulated module or device, and the actions
that open them.

"Simulate" on a module or device in the tree reads its key from the registry
(``get_module``/``get_device`` + ``connection_string``), or its certificate from the
keyring; "Simulate from Connection String…" takes a pasted one. A device's tab has a
Messages tab: the cloud-to-device messages it received. Several
modules run at once, each closed on its own; closing the window closes them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from twin_explorer.connection.hosts import parse_host_port
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.service.app_model import Selection
from twin_explorer.service.browse import DeviceRow, ModuleRow
from twin_explorer.service.errors import ServiceError
from twin_explorer.service.hub import HubService
from twin_explorer.service.identity_certificates import (
    IdentityCertificates,
    x509_connection_string,
)
from twin_explorer.service.local_hub import default_data_dir
from twin_explorer.simulator import SimulatedModule, SimulatorError, Status, Transport, read_ca
from twin_explorer.simulator.x509_files import X509Identity
from twin_explorer.twin.events import PatchStream
from twin_explorer.ui.chrome.pane_action import PaneAction, ToolbarEntry
from twin_explorer.ui.chrome.window_actions import SIMULATE
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.simulators.panel import SimulatorPanel
from twin_explorer.ui.panes.simulators.string_dialog import SimulateStringDialog

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def session_transport(session: object) -> Transport | None:
    """How modules reach the session's hub when that is a local hub; None for Azure.

    The app's own local hub: its CA, directly or through its proxy. A saved connection
    to this machine is most likely a ``twin-explorer hub`` on 8883: trust the default
    local hub CA, as ``make_service`` does for the service side.
    """
    info = getattr(session, "local_info", None)
    if getattr(session, "is_local", False) and info is not None:
        return Transport.for_local_hub(
            info.ca_cert, info.mqtt_port, info.proxy_port, https_port=info.rest_port
        )
    service = getattr(session, "service", None)
    if service is not None and service.device_host.lower() in _LOOPBACK:
        ca = default_data_dir() / "tls" / "ca.pem"
        if ca.exists():
            # Its REST port is the connection's own (HostName=localhost:PORT).
            port = parse_host_port(service.host)[1]
            return Transport(ca_pem=read_ca(ca), https_port=port)
    return None


class SimulatorDock(QDockWidget):
    # A simulated module connected, disconnected or is trying again: others (the tree's
    # Connection column) need not wait for their next poll to show it.
    connectionChanged = Signal(str, str)  # identity, status

    def __init__(
        self,
        window: QWidget,
        *,
        patches: PatchStream,
        report: Callable[[object], None],
        notify: Callable[[str], None],
        local_transport: Callable[[], Transport | None] = lambda: None,
        selection: Selection | None = None,
    ) -> None:
        super().__init__("Simulated Modules", window)
        self.setObjectName("simulatorDock")
        self._window = window
        self._patches = patches
        self._report = report
        self._notify = notify
        self.local_transport = local_transport
        self._service: HubService | None = None
        self._row: DeviceRow | ModuleRow | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self._tasks = Tasks(on_error=self._failed)
        self._certificates = IdentityCertificates()  # X.509 keys the app made, in the keyring

        self.tabs = QTabWidget()
        self.tabs.setObjectName("simulatorTabs")
        self.tabs.setTabsClosable(True)
        self.tabs.tabCloseRequested.connect(lambda i: self.close_panel(self.tabs.widget(i)))
        empty = QLabel(
            "Simulate a module or device from the Module menu or the tree's context menu."
        )
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._stack = QStackedWidget()
        self._stack.addWidget(empty)
        self._stack.addWidget(self.tabs)
        # Scrolls rather than grows: a panel's height never pushes the editor or the window.
        scroll = QScrollArea()
        scroll.setObjectName("simulatorScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self._stack)
        self.setWidget(scroll)

        self.simulate_action = QAction("&Simulate", window)
        self.simulate_action.setObjectName("simulateModule")
        self.simulate_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.simulate_action.setStatusTip("Run the selected module (or device) in this app")
        self.simulate_action.triggered.connect(self.simulate_selected)
        self.simulate_string_action = QAction("Simulate from Connection S&tring…", window)
        self.simulate_string_action.setObjectName("simulateFromString")
        self.simulate_string_action.triggered.connect(self.show_string_dialog)
        self.toggleViewAction().setText("Show Simulated &Modules")
        self.hide()
        self._update()
        if selection is not None:
            self._unsubscribe = selection.subscribe(self.set_selection)

    def pane_actions(self) -> list[PaneAction]:
        """Module: Simulate (also on the toolbar), from a connection string, show the
        dock; View: show the dock."""
        show = self.toggleViewAction()
        return [
            PaneAction(
                "Module",
                self.simulate_action,
                separator_before=True,
                toolbar=ToolbarEntry(SIMULATE, "Simulate"),
            ),
            PaneAction("Module", self.simulate_string_action),
            PaneAction("Module", show),
            PaneAction("View", show),
        ]

    def _failed(self, exc: BaseException) -> None:
        # The window's notice bar speaks ServiceError; a simulator error is as plain.
        self._report(ServiceError(exc.text) if isinstance(exc, SimulatorError) else exc)

    # -- state ---------------------------------------------------------------------------

    @property
    def panels(self) -> list[SimulatorPanel]:
        return [self.tabs.widget(i) for i in range(self.tabs.count())]

    def panel_for(self, identity: str) -> SimulatorPanel | None:
        return next((p for p in self.panels if p.module.identity == identity), None)

    def set_service(self, service: HubService | None) -> None:
        self._service = service
        self._update()

    def set_selection(self, row: DeviceRow | ModuleRow | None) -> None:
        self._row = row
        self._update()

    def _update(self) -> None:
        row = self._row
        ok = (
            self._service is not None
            and row is not None
            and row.auth_type in ("sas", "selfSigned", "certificateAuthority")
        )
        self.simulate_action.setEnabled(ok)
        self._stack.setCurrentIndex(1 if self.tabs.count() else 0)

    # -- opening -------------------------------------------------------------------------

    def simulate_selected(self) -> None:
        if self._service is not None and self._row is not None:
            self._tasks.spawn(self.simulate_row(self._service, self._row))

    async def simulate_row(
        self, service: HubService, row: DeviceRow | ModuleRow
    ) -> SimulatorPanel | None:
        if row.module_id:
            identity = await service.get_module(row.device_id, row.module_id)
        else:
            identity = await service.get_device(row.device_id)
        if identity.auth_type == "sas":
            return await self.open_module(
                service.connection_string(identity), self.local_transport()
            )
        # X.509: the certificate and key the app made for it, from the keyring (off the
        # UI thread: the keyring may be a D-Bus round trip, or ask to be unlocked).
        host, module_id = service.device_host, identity.module_id
        try:
            issued = await asyncio.to_thread(
                self._certificates.load, host, identity.device_id, module_id
            )
        except SecretStoreError as exc:
            self._notify(f"{identity.label}: could not read its key from the keyring: {exc}.")
            return None
        if issued is None:
            self._notify(
                f"{identity.label} uses an X.509 certificate whose key is not in your keyring; "
                "simulate it from the command line with twin-explorer simulate --cert --key."
            )
            return None
        return await self.open_module(
            x509_connection_string(host, identity.device_id, module_id),
            self.local_transport(),
            x509=X509Identity(issued.cert_pem, issued.key),
        )

    def show_string_dialog(self) -> SimulateStringDialog:
        dialog = SimulateStringDialog(self.local_transport, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.chosen.connect(
            lambda text, transport, x509: self._tasks.spawn(self.open_module(text, transport, x509))
        )
        dialog.open()
        return dialog

    async def open_module(
        self,
        connection_string: str,
        transport: Transport | None = None,
        x509: X509Identity | None = None,
    ) -> SimulatorPanel:
        """A panel for the module, started; an identity already running gets focus."""
        module = SimulatedModule(
            connection_string,
            transport=transport or Transport(),
            patches=self._patches,
            x509=x509,
        )
        existing = self.panel_for(module.identity)
        if existing is not None and existing.module.status not in (Status.FAILED, Status.CLOSED):
            self.tabs.setCurrentWidget(existing)
            self._appear()
            return existing
        if existing is not None:
            await self._close(existing)
        panel = SimulatorPanel(module)
        panel.closeRequested.connect(self.close_panel)
        panel.statusChanged.connect(self.connectionChanged)
        kind = "module" if module.is_module else "device"
        label = module.identity if module.is_module else f"{module.identity} (device)"
        index = self.tabs.addTab(panel, label)
        self.tabs.setTabToolTip(index, f"Simulated {kind} {module.identity} on {module.host}")
        self.tabs.setCurrentWidget(panel)
        self._update()
        self._appear()
        try:
            await module.start()
        except SimulatorError as error:  # the panel shows it too, with the whole history
            self._notify(f"{module.identity}: {error.text}")
        return panel

    def _appear(self) -> None:
        if self.isHidden():
            self.show()
            window = self._window
            if hasattr(window, "resizeDocks") and not self.isFloating():
                # Leave the tree and editor most of the height: a third for the panels.
                window.resizeDocks([self], [window.height() // 3], Qt.Orientation.Vertical)
        self.raise_()

    # -- closing -------------------------------------------------------------------------

    def close_panel(self, panel: QWidget) -> None:
        if isinstance(panel, SimulatorPanel):
            self._tasks.spawn(self._close(panel))

    async def _close(self, panel: SimulatorPanel) -> None:
        panel.detach()
        index = self.tabs.indexOf(panel)
        if index >= 0:
            self.tabs.removeTab(index)
        self._update()
        try:
            await panel.module.close()
        finally:
            panel.deleteLater()

    async def aclose(self) -> None:
        """Shutdown step: close every simulated module (each on its own)."""
        self._unsubscribe()
        await self._tasks.cancel_all()
        panels = self.panels
        await asyncio.gather(*(self._close(p) for p in panels), return_exceptions=True)
