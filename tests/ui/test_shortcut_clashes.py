"""No two of the window's actions share a key, also where the platform theme adds its
own standard keys (GNOME and KDE bind Refresh to Ctrl+R as well as F5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.xserver import have_xvfb, xvfb

LIST_SHORTCUTS = """
import json
from collections import defaultdict
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication
from twin_explorer.ui.main_window import MainWindow
from twin_explorer.ui.chrome.shortcuts_dialog import plain

app = QApplication([])
window = MainWindow()
keys = defaultdict(set)
for action in window.findChildren(QAction):
    for key in action.shortcuts():
        keys[key.toString()].add(plain(action.text()))
print(json.dumps({key: sorted(names) for key, names in keys.items()}))
"""


def _shortcuts(**env: str) -> dict[str, list[str]]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **env}
    done = subprocess.run(
        [sys.executable, "-c", LIST_SHORTCUTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _shared(keys: dict[str, list[str]]) -> dict[str, list[str]]:
    return {key: names for key, names in keys.items() if len(names) > 1}


def test_every_key_does_one_thing():
    keys = _shortcuts()
    assert "F5" in keys
    assert not _shared(keys), f"keys that do two things: {_shared(keys)}"


@pytest.mark.skipif(not have_xvfb(), reason="Xvfb is not installed (tools/dev test installs it)")
def test_every_key_does_one_thing_with_the_gtk_theme():
    with xvfb() as display:  # the GTK platform theme needs a display
        keys = _shortcuts(QT_QPA_PLATFORM="xcb", DISPLAY=display, QT_QPA_PLATFORMTHEME="gtk3")
    assert "F5" in keys and "Ctrl+R" in keys
    assert not _shared(keys), f"keys that do two things: {_shared(keys)}"
