"""The twin editor says which automatic device management configurations target the
twin it shows, from the twin the real local hub sends."""

from __future__ import annotations

from tests.ui.conftest import until
from tests.ui.editor_fixtures import hub, hub_tls, open_twin, opened, window
from twin_explorer.service.models import Twin, configurations_text

__all__ = ["hub", "hub_tls", "window"]


def _config(priority: int, value: int) -> dict:
    return {
        "content": {"deviceContent": {"properties.desired.fan": value}},
        "targetCondition": "tags.site = 'lab'",
        "priority": priority,
    }


def test_the_editor_names_the_configurations_that_target_the_twin(window, hub, qrun):
    editor = window.editor

    async def scenario():
        other = await opened(window, hub, {"tags": {"site": "lab"}})
        assert "configurations" not in editor.ui.info.plain_text()
        hub.core.configurations.put("low", _config(1, 1), None)
        hub.core.configurations.put("high", _config(5, 3), None)
        await until(
            lambda: (
                hub.core.configurations.targeting("d1") == {"low": "Targeted", "high": "Applied"}
            ),
            what="the configurations to reach the twin",
        )
        twin = await other.get_twin("d1")
        assert twin.configurations == {"high": "Applied", "low": "Targeted"}
        await open_twin(window, "d1")
        editor.refresh()
        await until(
            lambda: "configurations: high (Applied), low (Targeted)" in editor.ui.info.plain_text(),
            what="the editor to name them",
        )
        assert "Automatic device management" in editor.ui.info.toolTip()

    qrun(scenario())


def test_configurations_text_lists_the_applied_one_first():
    doc = {"configurations": {"a": {"status": "Targeted"}, "z": {"status": "Applied"}}}
    assert configurations_text(doc) == "configurations: z (Applied), a (Targeted)"
    assert configurations_text({"deviceId": "d"}) == ""
    assert Twin({"configurations": "odd"}).configurations == {}
