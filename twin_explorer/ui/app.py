"""Start the desktop app on a qasync event loop, and shut it down cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import MutableMapping

import qasync
from PySide6.QtCore import QCoreApplication, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from twin_explorer import APP_ID, APP_NAME, __version__, logs, resources
from twin_explorer.connection.session_bus import survive_bus_loss
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.ui_thread_gc import collect_on_ui_thread

log = logging.getLogger(__name__)

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


# Said by the headless (offscreen/minimal) platform plugins on every show(); not a fault.
_PLATFORM_NOISE = ("This plugin does not support propagateSizeHints()",)


def _qt_message(msg_type: QtMsgType, _context, message: str) -> None:
    # Qt's own messages go through our logging (and its redaction), not raw stderr.
    level = _QT_LEVELS.get(msg_type, logging.WARNING)
    if message in _PLATFORM_NOISE:
        level = logging.DEBUG
    logging.getLogger("qt").log(level, message)


def no_session_bus_autolaunch(env: MutableMapping[str, str] = os.environ) -> bool:
    """Keep Qt from starting a D-Bus session daemon that would outlive the app.

    With no session bus (a plain X11 session, ssh -X, Xvfb), Qt's platform theme and
    accessibility bridge ask libdbus for one, and libdbus "autolaunches" a dbus-daemon
    tied to the X display: it keeps running after the app exits. Telling libdbus (and
    the keyring's D-Bus client) that there is no session bus stops that; a desktop with
    a session bus is left alone. Returns True when autolaunch was turned off.
    """
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return False
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):
        return False  # the per-user bus libdbus finds by itself
    env["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
    return True


def create_application(argv: list[str] | None = None) -> QApplication:
    no_session_bus_autolaunch()
    survive_bus_loss()
    QCoreApplication.setOrganizationName(APP_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName(APP_ID)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setWindowIcon(resources.app_icon())  # every window, the taskbar and the dock
    collect_on_ui_thread(app)
    theme.follow_system()
    return app  # type: ignore[return-value]


def run_app(*, verbose: bool = False) -> int:
    """Open the main window and run until it closes. Returns the process exit code."""
    logs.configure("app", verbose=verbose)
    qInstallMessageHandler(_qt_message)
    app = create_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    from twin_explorer.ui.main_window import MainWindow

    window = MainWindow()
    closed = loop.create_future()
    window.closed.connect(lambda: closed.done() or closed.set_result(None))
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Ctrl-C in a terminal or a service manager's stop closes the window the normal
        # way, so unsaved-edit prompts and state saving still run.
        loop.add_signal_handler(sig, window.close)
    window.show()
    log.info("main window shown")
    # Opened from the running loop: its tasks must not be stepped by Qt before asyncio
    # runs (showing the window can process events), or they find no running loop.
    loop.call_soon(window.open_hub)
    with loop:
        loop.run_until_complete(closed)
        loop.run_until_complete(window.shutdown())
    asyncio.set_event_loop(None)
    lingering = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]
    if lingering:
        log.warning("threads still running at exit: %s", ", ".join(lingering))
    log.info("exited cleanly")
    return 0
