"""The app starts no D-Bus session daemon that outlives it (libdbus autolaunch on X11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.xserver import have_xvfb, xvfb
from twin_explorer.ui.app import no_session_bus_autolaunch

ROOT = Path(__file__).resolve().parents[1]


def processes_with(marker: str) -> dict[int, str]:
    """Living processes whose environment holds ``marker`` (children inherit it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone, or not ours to read
        if marker.encode() in environ.split(b"\0"):
            found[int(entry.name)] = cmdline
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(not have_xvfb(), reason="Xvfb is not installed (tools/dev test installs it)")
def test_self_test_on_x11_without_a_session_bus_leaves_no_process_behind(tmp_path):
    marker = f"TE_BUS_PROBE={uuid.uuid4().hex}"
    runtime = tmp_path / "run"  # an empty runtime dir: no per-user bus either
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(XDG_RUNTIME_DIR=str(runtime), QT_QPA_PLATFORM="xcb")
    env.update([marker.split("=", 1)])
    with xvfb() as display:
        env["DISPLAY"] = display
        result = subprocess.run(
            [sys.executable, "-m", "twin_explorer", "--self-test"],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            cwd=ROOT,
        )
        left = processes_with(marker)
        for pid in left:  # ours: started by the run above
            os.kill(pid, signal.SIGKILL)
    assert "GUI libraries" in result.stdout and "on xcb" in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert left == {}, f"still running after the app exited: {left}"


def test_a_session_bus_that_exists_is_used():
    given = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
    assert not no_session_bus_autolaunch(given)
    assert given["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/run/user/1000/bus"


def test_the_per_user_bus_is_left_for_libdbus_to_find(tmp_path):
    (tmp_path / "bus").touch()
    given = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert not no_session_bus_autolaunch(given)
    assert "DBUS_SESSION_BUS_ADDRESS" not in given


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libdbus platforms")
def test_no_session_bus_means_no_autolaunch(tmp_path):
    given = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert no_session_bus_autolaunch(given)
    assert given["DBUS_SESSION_BUS_ADDRESS"] == "disabled:"
