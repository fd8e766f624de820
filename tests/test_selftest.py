"""``twin-explorer --self-test`` from source: end to end, and a hub it must fail against."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from tests.connection.keyrings import MemoryKeyring
from twin_explorer import selftest
from twin_explorer.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHECKS = (
    "GUI libraries",
    "keyring",
    "local hub",
    "hub service",
    "simulated module",
    "twin round trip",
)


def report_lines(text: str) -> dict[str, str]:
    """Check name -> status, from the report's check lines."""
    found = {}
    for line in text.splitlines():
        for name in CHECKS:
            if line.startswith("  ") and line[8:].startswith(name):
                found[name] = line.split()[0]
    return found


@pytest.fixture
def pinned_keyring():
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


def test_self_test_passes_end_to_end_and_leaves_no_trace(secret_service, app_home, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        **{k: v for k, v in secret_service.env.items() if k != "HOME"},
        "TMPDIR": str(temp),
        "QT_QPA_PLATFORM": "offscreen",
    }
    result = subprocess.run(
        [sys.executable, "-m", "twin_explorer", "--self-test"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Twin Explorer ")
    assert "self-test (from source" in result.stdout.splitlines()[0]
    assert report_lines(result.stdout) == dict.fromkeys(CHECKS, "ok")
    assert "connection strings would be kept in SecretService" in result.stdout
    assert "echoed into reported" in result.stdout
    assert result.stdout.rstrip().endswith("PASSED: all 6 checks")
    # Everything happened in its own temporary home: the caller's home (here the
    # test's TWIN_EXPLORER_HOME) was never created, and the temporary one is gone.
    assert not app_home.exists()
    assert list(temp.iterdir()) == []


def test_a_hub_without_device_ports_fails_the_self_test(app_home):
    out = io.StringIO()
    code = selftest.run(
        out=out, hub_args=["--mqtt-port", "off", "--proxy-port", "off"], configure_logging=False
    )
    text = out.getvalue()
    assert code == 1, text
    statuses = report_lines(text)
    assert statuses["local hub"] == "ok"
    assert statuses["hub service"] == "ok"
    assert statuses["simulated module"] == "FAIL"
    assert statuses["twin round trip"] == "skip"
    assert "cannot reach it" in text or "no proxy" in text
    assert "FAILED: 2 of 6 checks did not pass" in text
    assert os.environ["TWIN_EXPLORER_HOME"] == str(app_home)  # restored
    assert not app_home.exists()


def test_no_keyring_is_a_note_not_a_failure(pinned_keyring):
    pinned_keyring(fail.Keyring())
    status, detail = selftest.check_keyring()
    assert status == selftest.NOTE
    assert "no system keyring" in detail


def test_a_working_keyring_is_reported_by_name(pinned_keyring):
    backend = MemoryKeyring()
    pinned_keyring(backend)
    status, detail = selftest.check_keyring()
    assert status == selftest.OK
    assert backend.name in detail
    assert backend.passwords == {}  # nothing was read into or written to it


def test_notes_pass_and_failures_or_skips_do_not():
    def report(*statuses: str) -> selftest.Report:
        result = selftest.Report(io.StringIO())
        for index, status in enumerate(statuses):
            result.add(f"check {index}", status, "detail")
        return result

    assert report(selftest.OK, selftest.NOTE).passed
    assert report(selftest.OK, selftest.NOTE).summary() == "PASSED: all 2 checks, 1 note"
    assert not report(selftest.OK, selftest.FAIL).passed
    assert not report(selftest.OK, selftest.SKIP).passed
    assert not report().passed


def test_self_test_takes_no_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--self-test", "connections", "list"])
    assert exit_info.value.code == 2
    assert "--self-test takes no subcommand" in capsys.readouterr().err
