"""Where the app keeps its files.

Everything lives in the platform's standard places (platformdirs). Setting
``TWIN_EXPLORER_HOME`` puts config, data, cache and logs under one folder instead:
a portable install, and how tests keep each run apart from the user's real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from twin_explorer import APP_ID

HOME_ENV = "TWIN_EXPLORER_HOME"


def _base(kind: str) -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / kind
    dirs = platformdirs.PlatformDirs(APP_ID, appauthor=False)
    return Path(
        {
            "config": dirs.user_config_dir,
            "data": dirs.user_data_dir,
            "cache": dirs.user_cache_dir,
            "logs": dirs.user_log_dir,
        }[kind]
    )


def _ensure(kind: str) -> Path:
    path = _base(kind)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    return _ensure("config")


def data_dir() -> Path:
    return _ensure("data")


def cache_dir() -> Path:
    return _ensure("cache")


def log_dir() -> Path:
    return _ensure("logs")
