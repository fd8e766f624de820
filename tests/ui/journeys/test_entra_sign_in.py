"""Signing in with Microsoft Entra ID: a person adds a hub whose shared keys are off,
signs in with a device code on the hub's own authority, browses and saves a twin; the
app started again opens the hub without asking; no token or secret is left in a file,
a log or a command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence

from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from tests.ui.person import Person
from twin_explorer.cli import main as cli_main

SAVE = QKeySequence.StandardKey.Save


@pytest.fixture
def signed_in_env(secret_service, monkeypatch, tmp_path) -> Path:
    """The test Secret Service on the session bus (the token cache lives there); HOME in
    tmp (azure-identity touches a signal file there)."""
    for name, value in secret_service.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def entra_hub(start_local_hub):
    """A hub with shared keys off, its demo devices, and the test user a Data Contributor."""
    hub = start_local_hub(
        "entra-hub", extra_args=("--demo", "--disable-local-auth", "--entra-auto-approve")
    )
    assert hub.info["local_auth"] is False
    args = ["hub", "roles", "assign", "--data-dir", str(hub.data_dir)]
    assert cli_main([*args, "test-user", "IoT Hub Data Contributor"]) == 0
    return hub


def _files_holding(folders: list[Path], secrets: list[str]) -> list[str]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path}: {s[:6]}…" for s in secrets if s.encode() in data]
                if b"eyJ" in data or b"refresh_token" in data:
                    found.append(f"{path}: a token")
    return found


def test_entra_sign_in_browse_save_and_restart(
    signed_in_env, entra_hub, person, qrun, qtbot, app_home
):
    info = entra_hub.info
    host = f"{info['hostname']}:{info['rest_port']}"

    async def add_and_sign_in():
        person.menu("Hub", "Connections…")
        await person.wait_to_see("Add Entra ID…")
        person.click("Add Entra ID…")
        await person.wait_to_see("Add Entra ID Connection")
        person.type_into("Name", "Entra hub")
        person.type_into("Hub host name", host)
        person.choose("Sign in with", "Device code")
        person.type_into("Tenant", info["entra_tenant_id"])
        person.type_into("Authority", info["entra_authority"])
        person.type_into("CA certificate", info["ca_cert"])
        person.click("Sign In")
        await person.wait_to_see("Signed in as tester@localhub.test", within=60)
        await person.wait_to_see(f"devices on {host}", within=60)
        person.click("Save")
        row = f"Entra hub — {host} (Entra ID)"
        await person.wait_to_see(row)
        person.click_row(person.window_titled("Hub Connections").list, row)
        person.click("Connect")
        await person.wait_to_see("tester@localhub.test (tenant", within=60)
        await person.wait_to_see("myFirstDevice")

    async def save_a_twin():
        tree = person.window.tree_view
        await until(lambda: not person.sees("Local hub ("), 30, "the Entra hub in the window")
        person.click_row(tree, "myFirstDevice")
        await person.wait_to_see("desired $version")
        person.type_into(
            "Tags and desired properties",
            '{"tags": {"signedIn": "entra"}, "properties": {"desired": {}}}',
        )
        await person.in_front()
        person.press(SAVE)
        await person.wait_to_see("Saved the twin of myFirstDevice")

    qrun(add_and_sign_in())
    qrun(save_a_twin())

    # The app starts again (a new window, as after a restart): it opens the hub it used
    # last, from the token cache, and asks nothing.
    person.window.close()
    again = open_window(qtbot)
    again.activateWindow()
    again.open_hub()
    second = Person(again)

    async def reopened():
        await second.wait_to_see("tester@localhub.test (tenant", within=60)
        await second.wait_to_see("myFirstDevice")
        second.click_row(again.tree_view, "myFirstDevice")
        await second.wait_to_see('"signedIn": "entra"')
        assert not second.sees("Sign in again")
        assert not second.sees("enter the code")

    qrun(reopened())

    # No token or secret in a file (the app's home, the user's home), a log or argv.
    secret = info["entra_client_secret"]
    leaks = _files_holding([app_home, signed_in_env], [secret])
    assert leaks == []
    for pid in (os.getpid(), entra_hub.pid):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert secret.encode() not in argv and b"eyJ" not in argv
    assert secret not in entra_hub.stderr_tail(100_000)
    hub_logs = list((app_home).rglob("*.log"))
    for log in hub_logs:
        assert b"eyJ" not in log.read_bytes() and secret.encode() not in log.read_bytes()
