"""Helpers for the packaging tests: the modules under packaging/ (not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "frozen: runs the built app in dist/ (skipped when there is no fresh build)"
    )


def load(name: str) -> ModuleType:
    """Import packaging/<name>.py by path (the folder name would shadow the PyPI
    ``packaging`` library if it were importable as a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACKAGING / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bundle_config() -> ModuleType:
    return load("bundle_config")
