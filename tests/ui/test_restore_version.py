"""Twin History > Restore This Version: the etag-guarded patch back to an older version,
shown first, sent like any edit, rebuilt (never forced) when the twin moved on."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.test_patch_log import finish, make_window, running_hub, select_in_tree


def top(name: str):
    found = [w for w in QApplication.topLevelWidgets() if w.objectName() == name]
    return found[0] if found else None


def test_restore_a_version_from_the_twin_history(qtbot, qrun, tmp_path):
    window = make_window(qtbot)
    log = window.patch_log

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            other = service_for(server, sdk_retries=False)
            await other.create_device("valve")
            await other.patch_twin("valve", None, {"tags": {"site": "a"}}, None)
            await window.session.use("Local hub", service_for(server, sdk_retries=False))
            await select_in_tree(window, "valve")
            await until(lambda: window.history.versions("valve"), what="baseline")
            await other.patch_twin(
                "valve", None,
                {"tags": {"site": "b"}, "properties": {"desired": {"position": "open"}}}, None,
            )  # fmt: skip
            await until(lambda: len(window.history.versions("valve")) == 2, what="change seen")

            window.patch_log_actions["history"].trigger()
            history = top("twinHistory")
            history.select_versions(1, 2)
            assert history.restore_button.isEnabled()
            QTest.mouseClick(history.restore_button, Qt.MouseButton.LeftButton)
            await until(lambda: top("restoreVersion") is not None, what="restore dialog")
            dialog = top("restoreVersion")
            await until(dialog.send_button.isEnabled, what="patch built")
            assert json.loads(dialog.patch_text.toPlainText()) == {
                "tags": {"site": "a"},
                "properties": {"desired": {"position": None}},
            }
            assert any('"position": "open"' in line for line in dialog.diff.diff_lines)

            # Someone writes first: nothing is forced; the patch is rebuilt and shown.
            await other.patch_twin("valve", None, {"tags": {"owner": "ops"}}, None)
            QTest.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            await until(lambda: "changed since" in dialog.status.text(), what="412 noticed")
            await until(dialog.send_button.isEnabled, what="patch rebuilt")
            rebuilt = json.loads(dialog.patch_text.toPlainText())
            assert rebuilt["tags"] == {"site": "a", "owner": None}
            QTest.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            await until(lambda: top("restoreVersion") is None, what="restore sent")

            twin = await other.get_twin("valve")
            assert twin.tags == {"site": "a"}
            assert "position" not in twin.desired
            await until(
                lambda: any(e.source == "restore" for e in log.visible_events()),
                what="restore in the patch log",
            )
            history.reject()
            await finish(window, other)

    qrun(scenario(), timeout=60)
