"""What survives a restart, and a kill right after a write was acknowledged."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.localhub.conftest import sas_body
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.store.sqlite import MIGRATIONS, Store


def test_close_and_reopen_keeps_everything(hub_dir: Path) -> None:
    with HubCore.open(hub_dir) as core:
        keys = core.policy_keys("iothubowner")
        device = core.put_device("d1", sas_body(), None)
        core.put_module("d1", "m1", {}, None)
        core.patch_twin("d1", "m1", {"tags": {"a": 1}, "properties": {"desired": {"x": 1}}}, None)
        core.patch_reported("d1", "m1", {"y": 2})
        core.set_connected("d1", None, True)
        twin = core.get_twin("d1", "m1")
    with HubCore.open(hub_dir) as core:
        assert core.policy_keys("iothubowner") == keys
        reopened = core.get_device("d1")
        # A restarted hub has no connections.
        assert reopened["connectionState"] == "Disconnected"
        assert reopened["etag"] == device["etag"]
        assert core.get_twin("d1", "m1") == twin
        assert core.get_twin("d1")["connectionState"] == "Disconnected"
        assert core.device_twin("d1", "m1")["reported"] == {"y": 2, "$version": 2}
        # Identity etags keep counting up after a restart.
        assert core.put_device("d2", sas_body(), None)["etag"] != device["etag"]


def test_schema_is_versioned(hub_dir: Path) -> None:
    store = Store.open(hub_dir)
    assert store.schema_version == len(MIGRATIONS)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    store.close()
    with pytest.raises(RuntimeError, match="newer"):
        Store.open(hub_dir)


def test_failed_write_leaves_nothing_behind(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    with pytest.raises(HubError):
        core.patch_twin("d1", None, {"tags": {"bad key": 1}}, None)
    with pytest.raises(HubError):
        core.put_device("d2", {"status": "unknown"}, None)
    conn = sqlite3.connect(core.store.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM twins").fetchone()[0] == 1
    finally:
        conn.close()


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from twin_explorer.localhub.core.hub import HubCore

    core = HubCore.open(Path(sys.argv[1]))
    core.put_device("crash", {"authentication": {"type": "sas"}}, None)
    core.patch_twin("crash", None, {"properties": {"desired": {"acked": True}}}, None)
    print("ack", flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_acknowledged_write_survives_sigkill(hub_dir: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(hub_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ack"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdin:
            proc.stdin.close()
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with HubCore.open(hub_dir) as core:
        twin = core.get_twin("crash")
        assert twin["properties"]["desired"]["acked"] is True
