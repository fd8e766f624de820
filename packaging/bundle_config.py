"""What goes into the frozen app, and what stays out. Read by ``twin-explorer.spec``.

Kept apart from the spec so it is plain, linted Python the tests can import.
"""

from __future__ import annotations

import posixpath
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_DIR_NAME = "twin-explorer"  # dist/twin-explorer/
LAUNCHER = "twin-explorer"  # dist/twin-explorer/twin-explorer(.exe)
# Windows only: a GUI-subsystem exe has no console, so commands typed in a terminal
# get a second, console-subsystem launcher of the same code.
CONSOLE_LAUNCHER = "twin-explorer-cli"
MAC_APP_NAME = "Twin Explorer"
# Reverse-DNS id for the macOS bundle; change it to the publisher's domain before signing.
BUNDLE_ID = "org.twinexplorer.TwinExplorer"

# Packages whose modules are (partly) loaded by name at run time, so import analysis
# alone misses some: the app itself (the hub loads its MQTT server by name, the CLI its
# self-test), the SDKs' transports and pipeline stages, keyring backends (found
# through entry points), jeepney/SecretStorage (the Linux Secret Service backend), and
# qasync (picks its Qt binding with importlib).
COLLECT_SUBMODULES = (
    "twin_explorer",
    "azure.iot.device",
    "azure.iot.hub",
    "uamqp",
    "paho.mqtt",
    "msrest",
    "keyring.backends",
    "jeepney",
    "secretstorage",
    "qasync",
)
HIDDEN_IMPORTS = (
    "PySide6.QtCore",
    "PySide6.QtGui",
    "PySide6.QtWidgets",
    "aiohttp",
    "cryptography",
    "socks",  # PySocks: paho's HTTP CONNECT proxy support
)
# Distribution metadata read at run time: keyring's backend entry points, the versions
# shown in About (twin_explorer.versions) and the app's own version.
METADATA = (
    "keyring",
    "azure-iot-hub",
    "azure-iot-device",
    "qasync",
    "PySide6-Essentials",
    "twin-explorer",  # present when the project is installed (tools/dev does); optional
)
OPTIONAL_METADATA = frozenset({"twin-explorer"})

# QtCore, QtGui and QtWidgets are used, and QtOpenGL and QtOpenGLWidgets, which pyqtgraph
# (the Events chart) imports whether or not it draws with OpenGL. Excluding the rest keeps
# their libraries and plugins (QML tooling, SQL drivers, TLS backends...) out of the bundle.
# PySide6-Essentials has no QtWebEngine; it is listed in case the Addons are installed.
QT_EXCLUDES = tuple(
    f"PySide6.{name}"
    for name in (
        "Qt3DAnimation",
        "Qt3DCore",
        "Qt3DExtras",
        "Qt3DInput",
        "Qt3DLogic",
        "Qt3DRender",
        "QtCharts",
        "QtConcurrent",
        "QtDataVisualization",
        "QtDBus",
        "QtDesigner",
        "QtGraphs",
        "QtHelp",
        "QtMultimedia",
        "QtMultimediaWidgets",
        "QtNetwork",
        "QtPdf",
        "QtPdfWidgets",
        "QtPositioning",
        "QtPrintSupport",
        "QtQml",
        "QtQuick",
        "QtQuick3D",
        "QtQuickControls2",
        "QtQuickTest",
        "QtQuickWidgets",
        "QtRemoteObjects",
        "QtScxml",
        "QtSensors",
        "QtSerialPort",
        "QtSql",
        "QtStateMachine",
        "QtSvg",
        "QtSvgWidgets",
        "QtTest",
        "QtTextToSpeech",
        "QtUiTools",
        "QtWebChannel",
        "QtWebEngineCore",
        "QtWebEngineQuick",
        "QtWebEngineWidgets",
        "QtWebSockets",
        "QtXml",
    )
)
EXCLUDES = (
    *QT_EXCLUDES,
    # Other Qt bindings qasync would try first if they were importable.
    "PyQt5",
    "PyQt6",
    "PySide2",
    # Development tools that may sit in the same environment.
    "tkinter",
    "pytest",
    "_pytest",
    "hypothesis",
    "pytestqt",
    "IPython",
    "PyInstaller",
)

# Bundle-relative paths of files not worth shipping. Qt's translations: the app is in
# English and installs no translator. Qt plugins for what a desktop app never uses:
# framebuffer, EGL-fullscreen and VNC platforms (and their input plugins), image formats
# beyond PNG/SVG/ICO, and the GTK3 theme, which would drag GTK, GDK, cairo and pango
# from the build machine into the bundle (file dialogs go through the XDG portal theme).
# Qt's folder in the bundle: PySide6/Qt on Linux and macOS, PySide6 itself on Windows.
_QT_DIRS = ("PySide6/Qt/", "PySide6/")
_DROP_IN_QT = (
    "translations/",
    "qml/",
    "plugins/egldeviceintegrations/",
    "plugins/generic/",
    *(
        f"plugins/platforms/{prefix}q{name}."
        for prefix in ("lib", "")
        for name in ("eglfs", "linuxfb", "minimalegl", "vkkhrdisplay", "vnc")
    ),
    *(
        f"plugins/imageformats/{prefix}q{name}."
        for prefix in ("lib", "")
        for name in ("gif", "icns", "jpeg", "tga", "tiff", "wbmp", "webp")
    ),
    "plugins/platformthemes/libqgtk3.",
)
DROP_PREFIXES = tuple(qt + path for qt in _QT_DIRS for path in _DROP_IN_QT)


def keep(dest: str) -> bool:
    """Whether a collected file (bundle-relative path) stays in the bundle."""
    normalized = dest.replace("\\", "/")
    return not normalized.startswith(DROP_PREFIXES)


TocEntry = tuple[str, str, str]  # (bundle-relative path, source path, kind)


def prune(binaries: list[TocEntry], imports_of: Callable[[str], list[str]]) -> list[TocEntry]:
    """``binaries`` without the dropped files and the libraries only they needed.

    A shared library PyInstaller collected for a dropped plugin goes too, unless a kept
    binary still links it. Only libraries a dropped file links are ever removed, so one
    found another way (ctypes) stays whatever the link graph says.
    """
    kept = [entry for entry in binaries if keep(entry[0])]
    dropped = [entry for entry in binaries if not keep(entry[0])]

    def name_of(path: str) -> str:  # macOS imports are paths; Windows ignores case
        return Path(path.replace("\\", "/")).name.lower()

    by_name = {name_of(dest): src for dest, src, _ in binaries}

    def reach(start: list[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(start)
        while todo:
            src = todo.pop()
            for name in map(name_of, imports_of(src)):
                if name in by_name and name not in seen:
                    seen.add(name)
                    todo.append(by_name[name])
        return seen

    candidates = reach([src for _, src, _ in dropped])
    roots = [src for dest, src, _ in kept if name_of(dest) not in candidates]
    orphans = candidates - reach(roots)
    return [entry for entry in kept if name_of(entry[0]) not in orphans]


def drop_dangling_links(datas: list[TocEntry], binaries: list[TocEntry]) -> list[TocEntry]:
    """``datas`` without symlinks whose target (bundle-relative) is no longer bundled."""
    present = {dest.replace("\\", "/") for dest, _, _ in (*datas, *binaries)}

    def target(dest: str, src: str) -> str:
        return posixpath.normpath(posixpath.join(posixpath.dirname(dest), src))

    return [
        (dest, src, kind)
        for dest, src, kind in datas
        if kind != "SYMLINK" or target(dest.replace("\\", "/"), src) in present
    ]


def icon_file() -> str | None:
    """The executable's icon: .ico (Windows), .icns (macOS). Linux executables carry
    none; the desktop entry names the icon there."""
    icons = ROOT / "resources" / "icons"
    if sys.platform == "win32":
        return str(icons / f"{LAUNCHER}.ico")
    if sys.platform == "darwin":
        return str(icons / f"{LAUNCHER}.icns")
    return None


def windowed() -> bool:
    """No console window on Windows and macOS; Linux executables have no such flag."""
    return sys.platform in ("win32", "darwin")


def app_version() -> str:
    """The version declared in pyproject.toml (the bundle's version on macOS)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])
