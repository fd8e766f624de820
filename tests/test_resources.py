"""Resources load through twin_explorer.resources, from the source tree and frozen."""

from __future__ import annotations

import configparser
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from twin_explorer import APP_ID, APP_NAME, resources

ROOT = Path(__file__).resolve().parents[1]

# Keys the Desktop Entry Specification 1.5 defines for the [Desktop Entry] group.
DESKTOP_KEYS = {
    "Type", "Version", "Name", "GenericName", "NoDisplay", "Comment", "Icon", "Hidden",
    "OnlyShowIn", "NotShowIn", "DBusActivatable", "TryExec", "Exec", "Path", "Terminal",
    "Actions", "MimeType", "Categories", "Implements", "Keywords", "StartupNotify",
    "StartupWMClass", "URL", "PrefersNonDefaultGPU", "SingleMainWindow",
}  # fmt: skip


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_source_tree_resources_are_the_top_level_folder():
    assert not resources.is_frozen()
    assert resources.root() == ROOT / "resources"


@pytest.mark.parametrize("size", resources.ICON_SIZES)
def test_every_icon_size_is_a_png_of_that_size(size):
    assert png_size(resources.icon_png(size).read_bytes()) == (size, size)


def test_unknown_icon_size_is_refused():
    with pytest.raises(ValueError, match="no 20px icon"):
        resources.icon_png(20)


def test_svg_source_is_there():
    assert resources.icon_svg().read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_app_icon_has_every_size(qapp):
    icon = resources.app_icon()
    assert not icon.isNull()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert sizes == {(n, n) for n in resources.ICON_SIZES}
    assert not icon.pixmap(48, 48).isNull()


def test_application_window_icon_comes_from_resources(qapp):
    from twin_explorer.ui.app import create_application

    app = create_application()
    assert not app.windowIcon().isNull()
    assert {s.width() for s in app.windowIcon().availableSizes()} == set(resources.ICON_SIZES)


def test_ico_and_icns_hold_png_images_qt_can_read(qapp):
    from PySide6.QtGui import QImageReader

    for name, expected in (
        (f"{APP_ID}.ico", [16, 24, 32, 48, 64, 128, 256]),
        (f"{APP_ID}.icns", [16, 32, 64, 128, 256, 512, 1024, 32, 64, 256, 512]),
    ):
        reader = QImageReader(str(resources.path("icons", name)))
        widths = []
        for index in range(reader.imageCount()):
            reader.jumpToImage(index)
            image = reader.read()
            assert image.width() == image.height()
            widths.append(image.width())
        assert widths == expected, name


def read_desktop_entry() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(resources.desktop_entry().read_text(encoding="utf-8"))
    return parser


def test_desktop_entry_has_valid_keys():
    entry = read_desktop_entry()
    assert entry.sections() == ["Desktop Entry"]
    group = entry["Desktop Entry"]
    assert set(group) <= DESKTOP_KEYS, set(group) - DESKTOP_KEYS
    assert group["Type"] == "Application"
    assert group["Name"] == APP_NAME
    # The launcher, the icon theme name and Qt's desktop file name are all the app id.
    assert group["Exec"].split()[0] == APP_ID
    assert group["TryExec"] == APP_ID
    assert group["Icon"] == APP_ID
    assert group["Terminal"] == "false"
    for key in ("Categories", "Keywords"):
        assert group[key].endswith(";"), f"{key} is a list and must end with ';'"
    assert resources.desktop_entry().name == f"{APP_ID}.desktop"


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed"
)
def test_desktop_entry_passes_desktop_file_validate():
    result = subprocess.run(
        ["desktop-file-validate", str(resources.desktop_entry())], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_frozen_build_reads_resources_from_the_bundle(tmp_path, monkeypatch):
    bundle = tmp_path / "_internal"
    shutil.copytree(ROOT / "resources", bundle / "resources")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert resources.is_frozen()
    assert resources.root() == bundle / "resources"
    assert resources.icon_png(32) == bundle / "resources" / "icons" / f"{APP_ID}-32.png"
    assert resources.desktop_entry().parent == bundle / "resources"


def test_missing_resources_raise_but_never_break_the_icon(tmp_path, monkeypatch, qapp):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    with pytest.raises(resources.ResourceMissing, match=r"icons/twin-explorer-16\.png"):
        resources.icon_png(16)
    assert resources.app_icon().isNull()


def test_render_script_draws_the_sizes_it_is_asked_for(qapp):
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import render_icons
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    for size in (16, 48):
        assert png_size(render_icons.render_png(resources.icon_svg(), size)) == (size, size)
    ico = render_icons.ico({16: b"a" * 10, 256: b"b" * 20})
    count = struct.unpack("<HHH", ico[:6])[2]
    first = struct.unpack("<BBBBHHII", ico[6:22])
    second = struct.unpack("<BBBBHHII", ico[22:38])
    assert count == 2
    assert first[0] == 16 and first[6:] == (10, 38)
    assert second[0] == 0 and second[6:] == (20, 48)  # 0 means 256 in an ICO entry
    assert ico[38:48] == b"a" * 10 and ico[48:] == b"b" * 20
