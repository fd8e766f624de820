"""The main window: device tree | twin editor, the patch log and simulated modules as tabs
in the bottom dock area, with menus, a toolbar and a status bar.

The window's state is the Qt-free ``AppModel``; each pane is built whole from its part of
it and placed whole (DESIGN "Each pane is one whole widget"). The window wires panes by
their public signals and slots, never by their children, and places the menu and toolbar
entries each pane offers (``pane_actions()``) in one loop.
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
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from twin_explorer import APP_NAME
from twin_explorer.service.app_model import AppModel
from twin_explorer.service.errors import ServiceError
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.settings import HUB_LAST, WATCH_INTERVAL
from twin_explorer.ui.chrome import window_state
from twin_explorer.ui.chrome.about import AboutDialog
from twin_explorer.ui.chrome.c2d_dialog import SendMessage
from twin_explorer.ui.chrome.connections_dialog import ConnectionsDialog
from twin_explorer.ui.chrome.dock_room import DockRoom
from twin_explorer.ui.chrome.hub_details import LocalHubDetailsDialog
from twin_explorer.ui.chrome.notice import NoticeBar
from twin_explorer.ui.chrome.pane_action import PaneAction, ToolbarEntry, place
from twin_explorer.ui.chrome.roles_dialog import RolesDialog
from twin_explorer.ui.chrome.settings import settings
from twin_explorer.ui.chrome.shortcuts_dialog import ShortcutsDialog
from twin_explorer.ui.chrome.window_actions import (
    REFRESH,
    TOOLBAR_ORDER,
    fill_toolbar,
    name_shortcuts_in_tooltips,
)
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.hub_session import LOCAL_HUB, HubSession
from twin_explorer.ui.panes.bulk import BulkPane
from twin_explorer.ui.panes.events import EventsPane
from twin_explorer.ui.panes.patch_log import PatchLogPane
from twin_explorer.ui.panes.simulators import SimulatorDock, session_transport
from twin_explorer.ui.panes.tree import IdentityActions, TreePane
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
        # The window's state, without Qt; each pane is built whole from its part.
        self.model = AppModel(
            session=session.state if session is not None else None,
            watch_interval=settings().get(WATCH_INTERVAL),
        )
        model = self.model
        self.patches = model.patches  # every patch sent, received, reported or observed
        self.history = model.history
        self.session = session or HubSession(parent=self, state=model.session)
        self.add_shutdown_step(model.aclose)

        self.tree_pane = TreePane(model.selection)
        self.editor = TwinEditor(model.patches, model.selection)
        self.log = PatchLogPane(
            model.patches, model.history, model.watcher, model.selection, parent=self
        )
        self.patch_log = self.log.widget
        self.watch = self.log.watch
        self.patch_log_actions = self.log.actions
        self.events = EventsPane(model.events, parent=self)
        self.simulators = SimulatorDock(
            self,
            patches=model.patches,
            report=self.show_error,
            notify=self.show_status,
            local_transport=lambda: session_transport(self.session),
            selection=model.selection,
        )
        self.identity = IdentityActions(
            self,
            self.tree_pane,
            report=self.show_error,
            notify=self.show_status,
            method_calls=model.method_calls,
        )
        self.identity.identity_actions.append(self.simulators.simulate_action)
        self.bulk = BulkPane(self, self._selected_ids, model.patches.publish)
        self.identity.identity_actions.append(self.bulk.action)
        self.c2d = SendMessage(self, self.tree_pane.current_row, model.c2d, self.show_error)
        self.identity.identity_actions.append(self.c2d.action)
        self.tree_pane.selectionChanged.connect(self.c2d.update)
        self.simulators.connectionChanged.connect(self.tree_pane.refresh_connections_soon)
        model.events.batches.subscribe(self._hub_events)  # the tree follows the hub live

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
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.simulators)
        self.tabifyDockWidget(self.log_pane, self.simulators)
        self.events_pane = _dock(self, "events", "Events", self.events.widget)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.events_pane)
        self.tabifyDockWidget(self.log_pane, self.events_pane)
        self.log_pane.raise_()
        self.dock_room = DockRoom(  # editor first
            self, [self.log_pane, self.simulators, self.events_pane]
        )

        self.hub_status = QLabel("No hub")
        self.hub_status.setObjectName("hubStatus")
        self.connection_status = QLabel("")
        self.connection_status.setObjectName("connectionStatus")
        self.statusBar().addWidget(self.hub_status, 1)
        self.statusBar().addPermanentWidget(self.connection_status)

        # Every pane follows the hub, reports in the window's message bar and closes
        # its work when the window shuts down.
        panes = (self.tree_pane, self.identity, self.editor, self.watch, self.simulators, self.bulk)
        self.session.serviceChanged.connect(self.c2d.set_service)
        for pane in panes:
            self.session.serviceChanged.connect(pane.set_service)
        for errors_of in (
            self.session,
            self.tree_pane,
            self.editor,
            self.patch_log,
            self.events.widget,
        ):
            errors_of.errorOccurred.connect(self.show_error)
        self.session.statusChanged.connect(self._hub_status_changed)
        self.tree_pane.refreshed.connect(self.session.recount)
        self.editor.statusMessage.connect(self.show_status)
        for step in (
            self.tree_pane.aclose,
            self.session.aclose,
            self.identity.aclose,
            self.editor.aclose,
            self.log.aclose,
            self.events.aclose,
            self.simulators.aclose,
            self.bulk.aclose,
            self.c2d.aclose,
        ):
            self.add_shutdown_step(step)

        self.menus: dict[str, QMenu] = {}
        self._build_menus()
        if not window_state.restore(self, self._splitters()):
            self._default_geometry()

    def _selected_ids(self) -> list[tuple[str, str | None]]:
        return [(row.device_id, row.module_id or None) for row in self.tree_pane.selected_rows()]

    @property
    def tree_view(self) -> QAbstractItemView:
        """The tree pane's device list (its public view: people click its rows)."""
        return self.tree_pane.view

    # -- menus -----------------------------------------------------------------------------

    def _build_menus(self) -> None:
        """The window's own entries and each pane's, placed in one loop; the order of the
        list is the order in each menu."""
        bar = self.menuBar()
        for title in MENU_TITLES:
            self.menus[title.replace("&", "")] = bar.addMenu(title)
        self.toolbar = QToolBar("Main Toolbar", self)
        entries = [
            *self._hub_actions(),
            *self.tree_pane.pane_actions(),
            PaneAction("Hub", self.hub_details_action),
            PaneAction("Hub", self.roles_action),
            *self._pane_toggles(),
            *self.identity.pane_actions(),
            PaneAction("Module", self.c2d.action),
            *self.editor.pane_actions(),
            *self.bulk.pane_actions(),
            *self.simulators.pane_actions(),
            *self._view_actions(),
            *self.log.pane_actions(),
            *self.events.pane_actions(),
            *self._file_and_help_actions(),
        ]
        place(entries, self.menus)
        self.menus["Hub"].setToolTipsVisible(True)  # says why Local Hub Details is off
        on_toolbar = [(e.action, e.toolbar) for e in entries if e.toolbar is not None]
        on_toolbar.sort(key=lambda pair: TOOLBAR_ORDER.index(pair[1].glyph))
        fill_toolbar(self, self.toolbar, [(a, t.glyph, t.label) for a, t in on_toolbar])
        name_shortcuts_in_tooltips(self)

    def _hub_actions(self) -> list[PaneAction]:
        connections = QAction("&Connections…", self)
        connections.setObjectName("connectionsAction")
        connections.setShortcut(QKeySequence("Ctrl+Shift+O"))
        connections.triggered.connect(self.show_connections)
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
        self.query_action = self.tree_pane.query_action
        self.hub_details_action = QAction("Local Hub &Details…", self)
        self.hub_details_action.setObjectName("localHubDetailsAction")
        self.hub_details_action.triggered.connect(self.show_local_hub_details)
        self.roles_action = QAction("Role &Assignments…", self)
        self.roles_action.setObjectName("roleAssignmentsAction")
        self.roles_action.triggered.connect(self.show_role_assignments)
        self.session.serviceChanged.connect(lambda _service: self._update_hub_details())
        self._update_hub_details()
        return [
            PaneAction("Hub", connections),
            PaneAction("Hub", self.refresh_action, toolbar=ToolbarEntry(REFRESH, "Refresh")),
        ]

    def _pane_toggles(self) -> list[PaneAction]:
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
        events_toggle = self.events_pane.toggleViewAction()
        events_toggle.setText("E&vents")
        events_toggle.setObjectName("toggle_events")
        events_toggle.setToolTip("Show or hide the hub's event stream")
        self.pane_toggles.append(events_toggle)
        return [PaneAction("View", toggle) for toggle in self.pane_toggles]

    def _view_actions(self) -> list[PaneAction]:
        reset = QAction("&Reset Layout", self)
        reset.setObjectName("resetLayout")
        reset.triggered.connect(self.reset_layout)
        return [
            PaneAction("View", self.toolbar.toggleViewAction(), separator_before=True),
            PaneAction("View", reset),
        ]

    def _file_and_help_actions(self) -> list[PaneAction]:
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        shortcuts = QAction("&Keyboard Shortcuts", self)
        shortcuts.setObjectName("shortcutsAction")
        shortcuts.setShortcut(QKeySequence("Ctrl+/"))
        shortcuts.triggered.connect(self.show_shortcuts)
        about = QAction(f"&About {APP_NAME}", self)
        about.setObjectName("aboutAction")
        about.triggered.connect(self.show_about)
        about_qt = QAction("About &Qt", self)
        about_qt.triggered.connect(QApplication.aboutQt)
        return [
            PaneAction("File", quit_action, separator_before=True),
            PaneAction("Help", shortcuts),
            PaneAction("Help", about),
            PaneAction("Help", about_qt),
        ]

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
        store = settings()
        name = name or store.get(HUB_LAST)
        if name != LOCAL_HUB and name not in self.session.profile_names():
            name = LOCAL_HUB
        store.set(HUB_LAST, name)
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

    def _hub_events(self, batch: list[EventRecord]) -> None:
        """Identities made or deleted elsewhere appear or go; connections show as they
        change (one re-read per batch of events, however many it holds)."""
        sources = {record.source for record in batch}
        if Source.LIFECYCLE in sources:
            self.tree_pane.reload()
        elif Source.CONNECTION in sources:
            self.tree_pane.refresh_connections_soon()

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
        self.roles_action.setEnabled(ready)
        self.roles_action.setToolTip(
            "Who may use the local hub with an Entra ID token, and for what" if ready else tip
        )

    def show_local_hub_details(self) -> LocalHubDetailsDialog | None:
        info = self.session.local_info
        if not self.session.is_local or info is None:
            return None
        dialog = LocalHubDetailsDialog(info, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()  # modeless: copy from it while working in the window
        return dialog

    def show_role_assignments(self) -> RolesDialog | None:
        service = self.session.service
        if not self.session.is_local or self.session.local_info is None or service is None:
            return None
        dialog = RolesDialog(service.hub_roles(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
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
