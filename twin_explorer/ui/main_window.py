"""The main window: device tree | twin editor, the patch log and simulated modules as tabs
in the bottom dock area, with menus, a toolbar and a status bar.

Each pane is placed whole (DESIGN "Each pane is one whole widget"): the window wires
panes by their public signals, slots and actions, never by their children.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from twin_explorer import APP_NAME
from twin_explorer.service.errors import ServiceError
from twin_explorer.service.history import TwinHistory
from twin_explorer.twin.events import PatchStream
from twin_explorer.ui.chrome import window_state
from twin_explorer.ui.chrome.about import AboutDialog
from twin_explorer.ui.chrome.connections_dialog import ConnectionsDialog
from twin_explorer.ui.chrome.dock_room import DockRoom
from twin_explorer.ui.chrome.hub_details import LocalHubDetailsDialog
from twin_explorer.ui.chrome.notice import NoticeBar
from twin_explorer.ui.chrome.shortcuts_dialog import ShortcutsDialog
from twin_explorer.ui.chrome.window_actions import (
    METHOD,
    REFRESH,
    SAVE,
    SIMULATE,
    build_toolbar,
    name_shortcuts_in_tooltips,
)
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.hub_session import LOCAL_HUB, HubSession
from twin_explorer.ui.panes.patch_log import PatchLogWidget, WatchController, add_menu_actions
from twin_explorer.ui.panes.simulators import SimulatorDock, session_transport
from twin_explorer.ui.panes.tree.identity_actions import IdentityActions
from twin_explorer.ui.panes.tree.tree_pane import TreePane
from twin_explorer.ui.panes.twin_editor import TwinEditor

log = logging.getLogger(__name__)

MENU_TITLES = ("&File", "&Hub", "&Twin", "&Module", "&View", "&Help")
TREE_MIN_WIDTH = 220
EDITOR_MIN_WIDTH = 360
EDITOR_MIN_LINES = 5  # a floor for small screens; a normal window leaves it far more


def editor_min_height(editor: QWidget) -> int:
    """Room for ``EDITOR_MIN_LINES`` of text plus the editor's header, tabs and buttons."""
    line = editor.fontMetrics().lineSpacing()
    chrome = 8 * line  # title, header, tab bar, status line, heading, margins
    return EDITOR_MIN_LINES * line + chrome


def _pane(name: str, title: str, body: QWidget) -> QWidget:
    pane = QWidget()
    pane.setObjectName(name)
    layout = QVBoxLayout(pane)
    theme.pane_layout(layout, margins=True)
    heading = QLabel(f"<b>{title}</b>")
    layout.addWidget(heading)
    layout.addWidget(body, 1)
    return pane


def _dock(window: QMainWindow, name: str, title: str, body: QWidget) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    theme.pane_layout(body.layout(), margins=True)  # the one pane margin and spacing
    dock.setWidget(body)
    return dock


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(self, session: HubSession | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self._shutdown_steps: list[Callable[[], Awaitable[None]]] = []
        self.patches = PatchStream()  # every patch sent, received, reported or observed

        # -- twin editor ----------------------------------------------------------------
        self.editor = TwinEditor(self.patches)
        # -- patch log: one stream of patch events; history of watched twins --
        self.history = TwinHistory()
        self.patch_log = PatchLogWidget(self.patches, self.history)

        self.tree_pane = TreePane()
        self.editor_pane = _pane("twinEditor", "Twin", self.editor)
        self.editor_pane.setMinimumSize(EDITOR_MIN_WIDTH, editor_min_height(self.editor))
        self.tree_pane.setMinimumWidth(TREE_MIN_WIDTH)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.setChildrenCollapsible(False)
        self.main_splitter.addWidget(self.tree_pane)
        self.main_splitter.addWidget(self.editor_pane)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 2)
        self.notice = NoticeBar()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.notice)
        central_layout.addWidget(self.main_splitter, 1)
        self.setCentralWidget(central)
        # The patch log is a whole pane in the bottom dock area; simulated modules share
        # that area as a tab, so opening them never takes the editor's height.
        self.log_pane = _dock(self, "patchLog", "Patch Log", self.patch_log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_pane)
        self.setDockNestingEnabled(False)

        self.hub_status = QLabel("No hub")
        self.hub_status.setObjectName("hubStatus")
        self.connection_status = QLabel("")
        self.connection_status.setObjectName("connectionStatus")
        self.statusBar().addWidget(self.hub_status, 1)
        self.statusBar().addPermanentWidget(self.connection_status)

        self.session = session or HubSession(parent=self)
        self.session.serviceChanged.connect(self.tree_pane.set_service)
        self.session.statusChanged.connect(self._hub_status_changed)
        self.session.errorOccurred.connect(self.show_error)
        self.tree_pane.errorOccurred.connect(self.show_error)
        self.add_shutdown_step(self.tree_pane.aclose)
        self.tree_pane.refreshed.connect(self.session.recount)
        self.add_shutdown_step(self.session.aclose)

        self.identity = IdentityActions(
            self,
            self.tree_pane,
            report=self.show_error,
            notify=self.show_status,
            patches=self.patches,
        )
        self.session.serviceChanged.connect(self.identity.set_service)
        self.add_shutdown_step(self.identity.aclose)

        # -- twin editor: follows the tree and the hub, asks before dropping an edit -------
        self.session.serviceChanged.connect(self.editor.set_service)
        self.editor.attach_tree(self.tree_pane)
        self.editor.errorOccurred.connect(self.show_error)
        self.editor.statusMessage.connect(self.show_status)
        self.add_shutdown_step(self.editor.aclose)

        # -- twin watching: the selected twin and pinned ones, polled by etag --
        self.watch = WatchController(self.patches, self.history, parent=self)
        self.session.serviceChanged.connect(self.watch.set_service)
        self.tree_pane.selectionChanged.connect(self.watch.select)
        self.watch.statusChanged.connect(self.patch_log.set_watch_status)
        self.patch_log.errorOccurred.connect(self.show_error)
        self.add_shutdown_step(self.watch.aclose)
        # -- simulated modules (ui/panes/simulators) --
        self.simulators = SimulatorDock(
            self,
            patches=self.patches,
            report=self.show_error,
            notify=self.show_status,
            local_transport=lambda: session_transport(self.session),
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.simulators)
        self.tabifyDockWidget(self.log_pane, self.simulators)
        self.log_pane.raise_()
        self.session.serviceChanged.connect(self.simulators.set_service)
        self.dock_room = DockRoom(self, [self.log_pane, self.simulators])  # editor first
        self.tree_pane.selectionChanged.connect(self.simulators.set_selection)
        self.identity.identity_actions.append(self.simulators.simulate_action)
        self.add_shutdown_step(self.simulators.aclose)
        # -- end simulated modules --

        self.menus: dict[str, QMenu] = {}
        self._build_menus()
        if not window_state.restore(self, self._splitters()):
            self._default_geometry()

    @property
    def tree_view(self) -> QAbstractItemView:
        """The tree pane's device list (its public view: people click its rows)."""
        return self.tree_pane.view

    # -- menus -----------------------------------------------------------------------------

    def _build_menus(self) -> None:
        bar = self.menuBar()
        for title in MENU_TITLES:
            self.menus[title.replace("&", "")] = bar.addMenu(title)

        connections = QAction("&Connections…", self)
        connections.setObjectName("connectionsAction")
        connections.setShortcut(QKeySequence("Ctrl+Shift+O"))
        connections.triggered.connect(self.show_connections)
        self.menus["Hub"].addAction(connections)
        self.refresh_action = QAction("&Refresh", self)
        self.refresh_action.setObjectName("refreshAction")
        # The platform's Refresh keys (GNOME and KDE add Ctrl+R to F5), less the twin
        # editor's Reload key: one key, one action.
        taken = self.editor.reload_action.shortcut()
        keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Refresh)
        self.refresh_action.setShortcuts([k for k in keys if k != taken] or [QKeySequence("F5")])
        self.refresh_action.setToolTip(
            "Read the devices shown again from the hub; expansion and selection stay"
        )
        self.refresh_action.triggered.connect(self.tree_pane.reload)
        self.menus["Hub"].addAction(self.refresh_action)
        find = QAction("&Filter Devices", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.tree_pane.focus_filter)
        self.menus["Hub"].addAction(find)
        self.query_action = QAction("&Query Devices", self)
        self.query_action.setObjectName("queryAction")
        self.query_action.setShortcut(QKeySequence("Ctrl+L"))
        self.query_action.setToolTip("Type an IoT Hub query for the device list")
        self.query_action.triggered.connect(self.tree_pane.focus_query)
        self.menus["Hub"].addAction(self.query_action)
        self.hub_details_action = QAction("Local Hub &Details…", self)
        self.hub_details_action.setObjectName("localHubDetailsAction")
        self.hub_details_action.triggered.connect(self.show_local_hub_details)
        self.menus["Hub"].addAction(self.hub_details_action)
        self.menus["Hub"].setToolTipsVisible(True)  # says why Local Hub Details is off
        self.session.serviceChanged.connect(lambda _service: self._update_hub_details())
        self._update_hub_details()

        hub = self.menus["Hub"]
        hub.addSeparator()
        for act in (
            self.identity.new_device,
            self.identity.delete,
            self.identity.enable,
            self.identity.disable,
        ):
            hub.addAction(act)
        module = self.menus["Module"]
        for act in (
            self.identity.new_module,
            self.identity.regenerate,
            self.identity.copy_primary,
            self.identity.copy_secondary,
            self.identity.method,
        ):
            module.addAction(act)
        module.addSeparator()
        module.addAction(self.simulators.simulate_action)
        module.addAction(self.simulators.simulate_string_action)
        show_simulators = self.simulators.toggleViewAction()
        show_simulators.setText("Show Simulated &Modules")
        module.addAction(show_simulators)

        twin = self.menus["Twin"]
        for act in self.editor.menu_actions():
            if act is None:
                twin.addSeparator()
            else:
                twin.addAction(act)

        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.menus["File"].addAction(quit_action)

        # The frequent actions; the query box is its own control beside the tree, so
        # Query Devices stays in the Hub menu (Ctrl+L) rather than the toolbar.
        self.toolbar = build_toolbar(
            self,
            [
                (self.refresh_action, REFRESH, "Refresh"),
                (self.editor.save_action, SAVE, "Save Twin"),
                (self.simulators.simulate_action, SIMULATE, "Simulate"),
                (self.identity.method, METHOD, "Invoke Method"),
            ],
        )
        view = self.menus["View"]
        self.pane_toggles: list[QAction] = []
        for pane, label in ((self.tree_pane, "Device &Tree"), (self.editor_pane, "Twin &Editor")):
            toggle = QAction(label, self, checkable=True, checked=True)
            toggle.setObjectName(f"toggle_{pane.objectName()}")
            toggle.toggled.connect(pane.setVisible)
            self.pane_toggles.append(toggle)
        log_toggle = QAction("&Patch Log", self, checkable=True, checked=True)
        log_toggle.setObjectName("toggle_patchLog")
        log_toggle.toggled.connect(self.log_pane.setVisible)
        self.log_pane.toggleViewAction().toggled.connect(log_toggle.setChecked)  # its ✕ button
        self.pane_toggles.append(log_toggle)
        for toggle in self.pane_toggles:
            view.addAction(toggle)
        view.addAction(show_simulators)
        view.addSeparator()
        view.addAction(self.toolbar.toggleViewAction())
        reset = QAction("&Reset Layout", self)
        reset.setObjectName("resetLayout")
        reset.triggered.connect(self.reset_layout)
        view.addAction(reset)

        shortcuts = QAction("&Keyboard Shortcuts", self)
        shortcuts.setObjectName("shortcutsAction")
        shortcuts.setShortcut(QKeySequence("Ctrl+/"))
        shortcuts.triggered.connect(self.show_shortcuts)
        self.menus["Help"].addAction(shortcuts)
        about = QAction(f"&About {APP_NAME}", self)
        about.setObjectName("aboutAction")
        about.triggered.connect(self.show_about)
        self.menus["Help"].addAction(about)
        about_qt = QAction("About &Qt", self)
        about_qt.triggered.connect(QApplication.aboutQt)
        self.menus["Help"].addAction(about_qt)
        self.patch_log_actions = add_menu_actions(self)  # File/Twin/View: log and watching
        name_shortcuts_in_tooltips(self)

    def _default_geometry(self) -> None:
        screen = self.screen().availableGeometry()
        width = min(1200, int(screen.width() * 0.9))
        height = min(780, int(screen.height() * 0.9))
        self.resize(width, height)
        self.move(screen.center() - self.rect().center())
        self.reset_layout()

    # -- hub -------------------------------------------------------------------------------

    def open_hub(self, name: str | None = None) -> None:
        """Open a connection; by default the one used last (the local hub at first)."""
        name = name or window_state.settings().value("hub/last", LOCAL_HUB)
        if name != LOCAL_HUB and name not in self.session.profile_names():
            name = LOCAL_HUB
        store = window_state.settings()
        store.setValue("hub/last", name)
        store.sync()
        self.session.open(name)

    def show_connections(self) -> ConnectionsDialog:
        dialog = ConnectionsDialog(self.session.profiles, current=self.session.name, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.connectRequested.connect(self.open_hub)
        dialog.open()
        return dialog

    def _hub_status_changed(self, text: str, reachable: bool) -> None:
        self.hub_status.setText(text)
        self.connection_status.setText("● reachable" if reachable else "● unreachable")
        theme.text_colour(self.connection_status, "ok" if reachable else "error")

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def show_error(self, exc: object) -> None:
        """Background failures: in plain words, in the message bar, never a traceback."""
        if isinstance(exc, ServiceError):
            text = exc.text
        else:
            log.error("unexpected error", exc_info=exc if isinstance(exc, BaseException) else None)
            text = f"Something went wrong: {exc}"
        self.notice.show_message(text)

    def reset_layout(self) -> None:
        for toggle in self.pane_toggles:
            toggle.setChecked(True)
        width, height = self.width(), self.height()
        self.main_splitter.setSizes([width // 3, width - width // 3])
        self.resizeDocks([self.log_pane], [height // 4], Qt.Orientation.Vertical)

    def _update_hub_details(self) -> None:
        session = self.session
        ready = session.is_local and session.local_info is not None
        self.hub_details_action.setEnabled(ready)
        if ready:
            tip = "Addresses, CA and code snippets to reach the local hub from scripts and SDKs"
        elif session.name is None or session.is_local:
            tip = "The local hub is not running: open it from Hub → Connections…"
        else:
            tip = f"Only for the built-in local hub; this window is connected to {session.name}"
        self.hub_details_action.setToolTip(tip)
        self.hub_details_action.setStatusTip(tip)

    def show_local_hub_details(self) -> LocalHubDetailsDialog | None:
        info = self.session.local_info
        if not self.session.is_local or info is None:
            return None
        dialog = LocalHubDetailsDialog(info, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()  # modeless: copy from it while working in the window
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal, never a nested event loop
        return dialog

    # -- lifetime --------------------------------------------------------------------------

    def add_shutdown_step(self, step: Callable[[], Awaitable[None]]) -> None:
        """Register async cleanup (hub process, simulated modules) run after the window closes."""
        self._shutdown_steps.append(step)

    async def shutdown(self) -> None:
        for step in reversed(self._shutdown_steps):
            try:
                await step()
            except Exception:
                log.exception("shutdown step failed")
        self._shutdown_steps.clear()

    def _splitters(self) -> dict[str, QSplitter]:
        return {"main": self.main_splitter}

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.editor.allow_close(self.close):  # unsaved twin edit: asked first
            event.ignore()
            return
        window_state.save(self, self._splitters())
        event.accept()
        self.closed.emit()
