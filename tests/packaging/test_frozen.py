"""The built app in dist/twin-explorer/, when there is a fresh one.

Building takes about a minute, so pytest never builds: ``./tools/dev test`` builds and
runs the frozen self-test itself when CI=true. These tests run against a build made
beforehand (``python packaging/build.py``) and are skipped when there is none, or when
the source changed after it was made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hubfixtures import HubProcess
from tests.packaging.conftest import ROOT

APP = ROOT / "dist" / "twin-explorer"
FROZEN = APP / ("twin-explorer-cli.exe" if sys.platform == "win32" else "twin-explorer")
SOURCES = ("twin_explorer", "resources", "packaging")


def skip_reason() -> str | None:
    if not FROZEN.exists():
        return f"no frozen build at {FROZEN} (python packaging/build.py makes one)"
    built = FROZEN.stat().st_mtime
    newer = [
        path
        for folder in SOURCES
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.stat().st_mtime > built
    ]
    if newer:
        return f"the frozen build is older than {newer[0].relative_to(ROOT)}; rebuild it"
    return None


pytestmark = [
    pytest.mark.frozen,
    pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
]


def run(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FROZEN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TWIN_EXPLORER_HOME": str(home)},
        cwd=APP.parent,
    )


def test_frozen_self_test_passes(app_home):
    result = run("--self-test", home=app_home, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test (frozen build" in result.stdout
    assert "PASSED" in result.stdout
    assert not app_home.exists()


def test_frozen_connections_list(app_home):
    result = run("connections", "list", "--json", home=app_home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) in ([], {"connections": []})


def test_frozen_simulate_help(app_home):
    result = run("simulate", "--help", home=app_home)
    assert result.returncode == 0, result.stderr
    assert "--connection-string-stdin" in result.stdout


class FrozenHub(HubProcess):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, executable=[str(FROZEN)])  # not "python -m twin_explorer"


def test_frozen_hub_starts_and_stops_cleanly(hub_data_dir):
    hub = FrozenHub(hub_data_dir("frozen"))
    try:
        info = hub.start()
        assert info["mqtt_port"] and info["proxy_port"], info
        manager = hub.registry_manager()
        manager.create_device_with_sas("frozen-hub-device", None, None, "enabled")
        assert manager.get_device("frozen-hub-device").device_id == "frozen-hub-device"
        assert hub.stop() == 0, hub.stderr_tail()
    finally:
        hub.cleanup()


def test_bundle_leaves_out_unused_qt_and_gtk():
    names = {path.name for path in APP.rglob("*")}
    for unwanted in ("QtWebEngineCore", "QtQml", "QtQuick", "QtNetwork", "QtSql", "libgtk-3"):
        assert not any(name.startswith((unwanted, f"libQt6{unwanted[2:]}")) for name in names), (
            unwanted
        )
    assert not any(name.endswith(".qm") for name in names)  # no Qt translations
    assert (APP / "_internal" / "resources" / "twin-explorer.desktop").exists()
