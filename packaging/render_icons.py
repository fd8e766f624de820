"""Render the app icon set from its SVG source: PNGs, a Windows .ico and a macOS .icns.

    python packaging/render_icons.py          # rewrite resources/icons/*
    python packaging/render_icons.py --check  # exit 1 if any file is missing or stale

Qt draws the SVG (QtSvg ships with PySide6-Essentials). The .ico and .icns containers
are written here with the standard library: both formats hold PNG images as they are,
so no imaging library is needed. The outputs are committed; run this after editing
the SVG.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twin_explorer import APP_ID  # noqa: E402
from twin_explorer.resources import ICON_SIZES  # noqa: E402

ICON_DIR = ROOT / "resources" / "icons"
SVG = ICON_DIR / f"{APP_ID}.svg"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # Windows uses up to 256
# ICNS element types that may hold PNG data, and the pixel size of each.
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),  # 512@2x
    (b"ic11", 32),  # 16@2x
    (b"ic12", 64),  # 32@2x
    (b"ic13", 256),  # 128@2x
    (b"ic14", 512),  # 256@2x
)


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn at size x size pixels, as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """An ICO file whose entries are PNG images (Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        blob = pngs[size]
        side = 0 if size >= 256 else size  # 0 means 256 in the directory entry
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(blob), offset)
        blobs += blob
        offset += len(blob)
    return header + entries + blobs


def icns(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file with PNG elements (macOS 10.7 and later)."""
    body = b""
    for kind, size in ICNS_TYPES:
        blob = pngs[size]
        body += kind + struct.pack(">I", 8 + len(blob)) + blob
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def outputs(svg: Path = SVG) -> dict[Path, bytes]:
    """Every generated file and its bytes."""
    needed = set(ICON_SIZES) | set(ICO_SIZES) | {size for _, size in ICNS_TYPES}
    pngs = {size: render_png(svg, size) for size in sorted(needed)}
    files = {ICON_DIR / f"{APP_ID}-{size}.png": pngs[size] for size in ICON_SIZES}
    files[ICON_DIR / f"{APP_ID}.ico"] = ico({size: pngs[size] for size in ICO_SIZES})
    files[ICON_DIR / f"{APP_ID}.icns"] = icns(pngs)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report files that are missing or stale"
    )
    args = parser.parse_args(argv)

    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication([sys.argv[0], "-platform", "offscreen"])
    stale = []
    for target, data in outputs().items():
        current = target.read_bytes() if target.exists() else None
        if current == data:
            continue
        stale.append(target)
        if not args.check:
            target.write_bytes(data)
    verb = "stale" if args.check else "wrote"
    for target in stale:
        print(f"{verb}: {target.relative_to(ROOT)}")
    if not stale:
        print("icons are up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
