"""Saved connections against a real Secret Service (gnome-keyring over D-Bus)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.connection.keyrings import files_containing
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.connection.secrets import SecretStore
from twin_explorer.connection.strings import build_service

KEY = "c2VjcmV0LWtleS1mb3ItdGhlLXNlY3JldC1zZXJ2aWNlLXRlc3Q="
CONNECTION = build_service("myhub.azure-devices.net", "iothubowner", KEY)


def test_save_reload_and_remove_through_the_keyring(secret_service_keyring, app_home):
    manager = ProfileManager(secrets=SecretStore())
    ok, reason = SecretStore().usable()
    assert ok, reason
    manager.add("prod", CONNECTION)

    # A new manager, as after a restart, finds the secret in the keyring.
    reloaded = ProfileManager(secrets=SecretStore())
    assert [p.name for p in reloaded.list()] == ["prod"]
    assert reloaded.get_connection_string("prod") == CONNECTION
    assert secret_service_keyring.get_password("twin-explorer", "prod") == CONNECTION

    # Nothing under the app's config, data or cache folders holds the key.
    assert files_containing(app_home, KEY) == []

    reloaded.remove("prod")
    assert secret_service_keyring.get_password("twin-explorer", "prod") is None
    assert ProfileManager(secrets=SecretStore()).list() == []


def test_cli_saves_to_the_keyring_from_stdin(secret_service, app_home):
    env = {
        **os.environ,
        **{k: v for k, v in secret_service.env.items() if k != "HOME"},
        "TWIN_EXPLORER_HOME": str(app_home),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
    }

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "twin_explorer", "connections", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    added = cli("add", "lab", stdin=CONNECTION + "\n")
    assert added.returncode == 0, added.stderr
    listed = cli("list")
    assert "lab" in listed.stdout and "myhub.azure-devices.net" in listed.stdout
    for output in (added.stdout, added.stderr, listed.stdout, listed.stderr):
        assert KEY not in output
    assert files_containing(app_home, KEY) == []
    removed = cli("remove", "lab")
    assert removed.returncode == 0, removed.stderr
    assert "lab" not in cli("list").stdout
