from __future__ import annotations

import os
import subprocess
import sys

import pytest

from twin_explorer import __version__
from twin_explorer.cli import build_parser, main


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"twin-explorer {__version__}"


def test_help_describes_the_app():
    text = build_parser().format_help()
    assert "Azure IoT Hub" in text and "desktop app" in text


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "twin_explorer", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert __version__ in result.stdout


def test_connections_subcommand_is_wired(app_home):
    result = subprocess.run(
        [sys.executable, "-m", "twin_explorer", "connections", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TWIN_EXPLORER_HOME": str(app_home)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("[]", '{"connections": []}')
