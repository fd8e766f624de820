"""Build the double-click app: a one-folder PyInstaller build in dist/twin-explorer/.

    python packaging/build.py               # build dist/twin-explorer/
    python packaging/build.py --self-test   # build, then run the built app's self-test

Run it with the Python that has Twin Explorer's dependencies and PyInstaller
(``pip install -e .[build]``, or ``./tools/dev build``). The launcher is
dist/twin-explorer/twin-explorer (twin-explorer.exe and twin-explorer-cli.exe on
Windows; dist/Twin Explorer.app on macOS). PyInstaller builds for the system it runs
on: build on each platform you ship for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "twin-explorer.spec"
APP_DIR_NAME = "twin-explorer"
SELF_TEST_TIMEOUT = 300


def launcher(dist: Path) -> Path:
    """The built launcher; on Windows the console one, which can print."""
    folder = dist / APP_DIR_NAME
    if sys.platform == "win32":
        return folder / "twin-explorer-cli.exe"
    return folder / "twin-explorer"


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def build(dist: Path, work: Path, *, clean: bool) -> float:
    """Run PyInstaller on the spec; returns the seconds it took."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise SystemExit(
            "PyInstaller is not installed for this Python. Install the build extra: "
            "pip install -e '.[build]' (or run ./tools/dev build)."
        ) from None
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        *(["--clean"] if clean else []),
        str(SPEC),
    ]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    return time.monotonic() - started


def _is_elf(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"\x7fELF"


def strip_debug_symbols(folder: Path) -> int:
    """Drop debug symbols from the app's own libraries on Linux (libpython alone carries
    about 20 MB). Libraries a wheel vendors (``*.libs`` folders, patched by auditwheel)
    are left as they are: rewriting them breaks their load commands. Returns the count."""
    strip = shutil.which("strip")
    if not sys.platform.startswith("linux") or strip is None:
        return 0
    files = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and (path.suffix == ".so" or ".so." in path.name)
        and not any(part.endswith(".libs") for part in path.relative_to(folder).parts)
        and _is_elf(path)
    ]
    for start in range(0, len(files), 200):
        subprocess.run([strip, "--strip-debug", *map(str, files[start : start + 200])], check=True)
    return len(files)


def self_test(dist: Path) -> int:
    exe = launcher(dist)
    print(f"running {exe} --self-test", flush=True)
    # The app's own files go to a throwaway home; the self-test makes its own inside.
    env = {k: v for k, v in os.environ.items() if k != "TWIN_EXPLORER_HOME"}
    try:
        return subprocess.run(
            [str(exe), "--self-test"], cwd=dist, env=env, timeout=SELF_TEST_TIMEOUT
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"the self-test did not finish within {SELF_TEST_TIMEOUT} s", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "build" / "pyinstaller", help="scratch folder"
    )
    parser.add_argument(
        "--clean", action="store_true", help="drop PyInstaller's cache and build from scratch"
    )
    parser.add_argument(
        "--self-test", action="store_true", help="run the built app's self-test afterwards"
    )
    args = parser.parse_args(argv)
    dist = args.dist.resolve()
    if args.clean:
        shutil.rmtree(args.work, ignore_errors=True)
    seconds = build(dist, args.work.resolve(), clean=args.clean)
    exe = launcher(dist)
    if not exe.exists():
        print(f"the build finished but {exe} is missing", file=sys.stderr)
        return 1
    stripped = strip_debug_symbols(dist / APP_DIR_NAME)
    size = folder_size(dist / APP_DIR_NAME) / 1e6
    print(f"debug symbols dropped from {stripped} libraries", flush=True)
    print(f"built {exe} in {seconds:.0f} s; folder {size:.0f} MB", flush=True)
    if args.self_test:
        return self_test(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
