"""Versions of the parts the app is built from, for About and bug reports."""

from __future__ import annotations

import platform
from importlib import metadata

from twin_explorer import __version__

_DISTRIBUTIONS = ("azure-iot-hub", "azure-iot-device", "qasync", "PySide6-Essentials")


def component_versions() -> dict[str, str]:
    """Name -> version for the app, Python and the libraries that shape its behaviour."""
    versions = {"Twin Explorer": __version__, "Python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
