"""A real Secret Service for tests: gnome-keyring on a private D-Bus session bus.

Started once per test session by the ``secret_service`` fixture (nothing of the user's
desktop is touched: its own bus, runtime dir and keyring folder under a temp dir), and
stopped at the end. Skips with the reason when gnome-keyring or dbus is not installed;
``tools/dev test`` installs both, so CI always runs these tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from twin_explorer.connection.session_bus import survive_bus_loss


@dataclass(frozen=True)
class SecretServiceEnv:
    env: dict[str, str]  # variables a child process needs to reach this keyring
    data_dir: Path  # where gnome-keyring keeps its (encrypted) files


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory) -> Iterator[SecretServiceEnv]:
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (tools/dev test installs it)")
    root = tmp_path_factory.mktemp("secret-service")
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    env = {
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_DATA_HOME": str(root / "data"),
        "HOME": str(root / "home"),
    }
    (root / "home").mkdir()
    bus = subprocess.run(
        ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
        timeout=30,
    )
    address, pid = bus.stdout.split()
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    keyring_daemon = subprocess.run(
        ["gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize"],
        input="test-login-password",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
        timeout=30,
    )
    daemon_env = dict(
        line.split("=", 1) for line in keyring_daemon.stdout.splitlines() if "=" in line
    )
    try:
        yield SecretServiceEnv(env=env, data_dir=root / "data")
    finally:
        # This process may hold GLib's shared connection to the bus (libsecret): it
        # would raise SIGTERM here when the bus stops, ending the run after it passed.
        survive_bus_loss()
        keyring_pid = daemon_env.get("GNOME_KEYRING_PID")
        for victim in (keyring_pid, pid):
            if victim:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(victim), signal.SIGTERM)


@pytest.fixture
def secret_service_keyring(secret_service, monkeypatch):
    """This process's ``keyring`` pointed at the test Secret Service."""
    import keyring
    from keyring.backends import SecretService

    for name, value in secret_service.env.items():
        if name != "HOME":
            monkeypatch.setenv(name, value)
    previous = keyring.get_keyring()
    backend = SecretService.Keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
