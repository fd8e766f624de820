"""Test-wide isolation: every test gets its own app home, never the user's files."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Shared fixtures: real local hubs (subprocess and in-process) and a real Secret Service.
pytest_plugins = ["tests.hubfixtures", "tests.secret_service"]


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TWIN_EXPLORER_HOME", str(home))
    return home
