"""The real app, as a process: starts, shows its window, and quits cleanly on request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a file another process writes; the condition is re-checked


def _start(home: Path) -> subprocess.Popen:
    env = dict(os.environ, TWIN_EXPLORER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen(
        [sys.executable, "-m", "twin_explorer"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_until_signal(home: Path, signum: int) -> str:
    """Start the app, wait for its window, send ``signum``; returns its stderr."""
    log_file = home / "logs" / "app.log"
    proc = _start(home)
    try:
        _wait_for(
            lambda: log_file.exists() and "main window shown" in log_file.read_text(),
            timeout=30,
            what="the main window",
        )
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    return err


def test_app_quits_cleanly_on_sigterm(app_home):
    err = _run_until_signal(app_home, signal.SIGTERM)
    assert err == "", err  # no Qt warnings, no tracebacks
    text = (app_home / "logs" / "app.log").read_text()
    assert "exited cleanly" in text
    assert "threads still running" not in text
    assert "Traceback" not in text
    assert (app_home / "config" / "ui.ini").exists()  # window state was saved on the way out
    if "local hub ready" in text:  # the built-in hub started with the app: it stopped too
        assert "local hub stopped" in text


def test_sigint_also_closes_the_window(app_home):
    err = _run_until_signal(app_home, signal.SIGINT)
    assert "KeyboardInterrupt" not in err and err == ""
