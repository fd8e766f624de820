"""What the frozen app bundles: the pure parts of packaging/bundle_config.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.packaging.conftest import PACKAGING, ROOT
from twin_explorer.cli import build_parser

QT = "PySide6/Qt/plugins/"


@pytest.mark.parametrize(
    "dest",
    [
        "PySide6/Qt/translations/qtbase_de.qm",
        QT + "platformthemes/libqgtk3.so",
        QT + "platforms/libqvnc.so",
        QT + "platforms/libqeglfs.so",
        QT + "generic/libqevdevmouseplugin.so",
        QT + "egldeviceintegrations/libqeglfs-x11-integration.so",
        QT + "imageformats/libqtiff.so",
        "PySide6\\plugins\\imageformats\\qjpeg.dll",  # Windows layout
        "PySide6\\translations\\qtbase_fr.qm",
    ],
)
def test_unused_qt_files_are_dropped(bundle_config, dest):
    assert not bundle_config.keep(dest)


@pytest.mark.parametrize(
    "dest",
    [
        QT + "platforms/libqxcb.so",
        QT + "platforms/libqwayland.so",
        QT + "platforms/libqoffscreen.so",
        QT + "platformthemes/libqxdgdesktopportal.so",
        QT + "platforminputcontexts/libcomposeplatforminputcontextplugin.so",
        QT + "imageformats/libqsvg.so",
        QT + "imageformats/libqico.so",
        QT + "iconengines/libqsvgicon.so",
        "PySide6/Qt/lib/libQt6Widgets.so.6",
        "resources/icons/twin-explorer-32.png",
    ],
)
def test_what_the_app_needs_is_kept(bundle_config, dest):
    assert bundle_config.keep(dest)


def test_prune_drops_libraries_only_dropped_plugins_link(bundle_config):
    gtk_theme = QT + "platformthemes/libqgtk3.so"
    links = {
        "/src/libqgtk3.so": ["libgtk-3.so.0", "libQt6Gui.so.6", "libc.so.6"],
        "/src/libgtk-3.so.0": ["libcairo.so.2", "libglib-2.0.so.0"],
        "/src/libcairo.so.2": ["libpng16.so.16"],
        "/src/libQt6Gui.so.6": ["libglib-2.0.so.0", "libpng16.so.16"],
        "/src/libglib-2.0.so.0": [],
        "/src/libpng16.so.16": [],
        "/src/libffi.so.8": [],  # found some other way (ctypes): nothing links it
        "/src/libqxcb.so": ["libQt6Gui.so.6"],
    }
    binaries = [
        (gtk_theme, "/src/libqgtk3.so", "BINARY"),
        ("libgtk-3.so.0", "/src/libgtk-3.so.0", "BINARY"),
        ("libcairo.so.2", "/src/libcairo.so.2", "BINARY"),
        ("PySide6/Qt/lib/libQt6Gui.so.6", "/src/libQt6Gui.so.6", "BINARY"),
        ("libglib-2.0.so.0", "/src/libglib-2.0.so.0", "BINARY"),
        ("libpng16.so.16", "/src/libpng16.so.16", "BINARY"),
        ("libffi.so.8", "/src/libffi.so.8", "BINARY"),
        (QT + "platforms/libqxcb.so", "/src/libqxcb.so", "BINARY"),
    ]
    kept = [dest for dest, _, _ in bundle_config.prune(binaries, links.__getitem__)]
    assert kept == [
        "PySide6/Qt/lib/libQt6Gui.so.6",
        "libglib-2.0.so.0",  # the GTK theme linked it, but so does Qt
        "libpng16.so.16",
        "libffi.so.8",
        QT + "platforms/libqxcb.so",
    ]


def test_links_to_dropped_files_are_dropped_too(bundle_config):
    datas = [
        ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
        ("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
        ("PySide6/Qt/lib/libicu.so", "libicu.so.73", "SYMLINK"),
        ("resources/twin-explorer.desktop", "/src/twin-explorer.desktop", "DATA"),
    ]
    binaries = [
        ("PySide6/Qt/lib/libQt6Core.so.6", "/src/core", "BINARY"),
        ("PySide6/Qt/lib/libicu.so.73", "/src/icu", "BINARY"),
    ]
    assert [d for d, _, _ in bundle_config.drop_dangling_links(datas, binaries)] == [
        "libQt6Core.so.6",
        "PySide6/Qt/lib/libicu.so",
        "resources/twin-explorer.desktop",
    ]


def qt_modules_imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("PySide6.Qt") and n.count(".") == 1)
    return found


def test_the_app_uses_no_excluded_qt_module(bundle_config):
    used = set()
    for path in (ROOT / "twin_explorer").rglob("*.py"):
        used |= qt_modules_imported(path)
    assert used, "no Qt import found: the scan is broken"
    assert not used & set(bundle_config.EXCLUDES), "bundle_config excludes a module the app uses"
    assert {"PySide6.QtWebEngineWidgets", "PySide6.QtQml", "PySide6.QtQuick"} <= set(
        bundle_config.EXCLUDES
    )


def test_runtime_hook_skips_qt_only_for_qt_free_subcommands():
    hook = ast.parse((PACKAGING / "hooks" / "rthook_pyside6.py").read_text(encoding="utf-8"))
    headless = next(
        ast.literal_eval(node.value)
        for node in ast.walk(hook)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "headless"
    )
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert headless <= set(subparsers.choices)
    for name in headless:
        module = subparsers.choices[name].get_default("func").__module__
        # Below ui, where the import-linter contract keeps Qt out.
        assert not module.startswith("twin_explorer.ui"), (name, module)
