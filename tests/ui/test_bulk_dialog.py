"""The Change Many Twins window with a run a previous session left unfinished: it offers
to open it, shows what is left, and Apply finishes it; the export writes the report."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.test_patch_log import running_hub
from twin_explorer.service.bulk.change import parse_change
from twin_explorer.service.bulk.choose import TwinSelection
from twin_explorer.service.bulk.run import BulkRun, RunState
from twin_explorer.ui.panes.bulk.dialog import BulkChangeDialog


def test_an_unfinished_run_is_offered_and_finished(qtbot, qrun, tmp_path):
    runs = tmp_path / "runs"

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            service = service_for(server, sdk_retries=False)
            for i in range(6):
                await service.create_device(f"u-{i}")
            run = await BulkRun.preview(
                service, TwinSelection("SELECT * FROM devices"),
                parse_change('{"tags": {"zone": "z2"}}'), root=runs,
            )  # fmt: skip
            # Stopped after its first write, as when the app closes mid-run.
            stopped = await run.apply(service, concurrency=1, publish=lambda _e: run.cancel())
            assert stopped.state is RunState.CANCELLED and stopped.done == 1

            dialog = BulkChangeDialog(lambda: service, runs_root=runs)
            qtbot.addWidget(dialog)
            dialog.show()
            assert dialog.resume_button.isVisible()
            assert run.id in dialog.resume_note.text()
            QTest.mouseClick(dialog.resume_button, Qt.MouseButton.LeftButton)
            await until(lambda: dialog.model.rowCount() == 6, what="the run's twins")
            assert "5 twins still to do" in dialog.twins_note.text()
            assert dialog.apply_button.text() == "Apply to 5 Twins"
            QTest.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
            await until(lambda: "Done" in dialog.twins_note.text(), what="the run finished")
            assert "6 applied" in dialog.counts.text()
            assert (await service.get_twin("u-3")).tags == {"zone": "z2"}

            report = tmp_path / "report.jsonl"
            await dialog.export(str(report))
            lines = [json.loads(line) for line in report.read_text().splitlines()]
            assert {line["outcome"] for line in lines} == {"applied"} and len(lines) == 6
            await dialog.aclose()
            await service.aclose()

    qrun(scenario(), timeout=60)


def test_conflicts_are_previewed_again_before_anything_of_theirs_is_replaced(qtbot, qrun, tmp_path):
    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            service = service_for(server, sdk_retries=False)
            other = service_for(server, sdk_retries=False)
            for i in range(3):
                await service.create_device(f"c-{i}")
            dialog = BulkChangeDialog(lambda: service, runs_root=tmp_path / "runs")
            qtbot.addWidget(dialog)
            dialog.show()
            dialog.query_edit.setText("SELECT * FROM devices")
            dialog.patch_edit.setPlainText('{"tags": {"mode": "new"}}')
            QTest.mouseClick(dialog.preview_button, Qt.MouseButton.LeftButton)
            await until(lambda: dialog.model.rowCount() == 3, what="the preview")
            await other.patch_twin("c-1", None, {"tags": {"mode": "theirs"}}, None)
            QTest.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
            await until(lambda: "Done" in dialog.twins_note.text(), what="the run")
            assert "1 conflict" in dialog.counts.text()
            assert (await other.get_twin("c-1")).tags == {"mode": "theirs"}
            assert dialog.retry_button.isEnabled()

            QTest.mouseClick(dialog.retry_button, Qt.MouseButton.LeftButton)
            await until(lambda: "1 twins previewed" in dialog.twins_note.text(), what="again")
            assert dialog.model.index(0, 0).data() == "c-1"
            dialog.table.selectRow(0)
            assert '-    "mode": "theirs"' in dialog.diff.toPlainText()
            QTest.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
            await until(lambda: "Done" in dialog.twins_note.text(), what="the decision")
            assert (await other.get_twin("c-1")).tags == {"mode": "new"}
            await dialog.aclose()
            await service.aclose()
            await other.aclose()

    qrun(scenario(), timeout=60)
