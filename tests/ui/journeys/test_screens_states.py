"""tools/screens: its states reach what they picture through the window's visible
controls (here on the offscreen window a journey uses), and a state that succeeds
leaves no FAILED picture of an earlier run behind."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _screens_tool():
    spec = importlib.util.spec_from_file_location("screens_tool", ROOT / "tools" / "screens.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_screens_states_show_what_they_name(person, qrun, tmp_path):
    tool = _screens_tool()
    by_name = {item.name: item for item in tool.STATES}
    # The simulator first: it takes the bottom area's front tab from the patch log.
    order = [
        "15-simulator-telemetry",
        "04-patch-log-filtered",
        "13-local-hub-details",
        "14-keyboard-shortcuts",
        "16-method-answered",
        "17-add-connection",
    ]
    stale = tmp_path / "04-patch-log-filtered-FAILED-light.png"
    other_scheme = tmp_path / "04-patch-log-filtered-FAILED-dark.png"
    stale.write_bytes(b"old")
    other_scheme.write_bytes(b"old")
    screens = tool.Screens(person.window, person, tmp_path, "light")
    results = qrun(tool.run_states(screens, [by_name[n] for n in order]), timeout=240)
    failed = [(name, outcome) for name, outcome in results if not outcome.startswith("ok")]
    assert not failed
    assert not stale.exists()  # this run's success replaces the old failure
    assert other_scheme.exists()  # the other scheme's run is not this one's to judge
