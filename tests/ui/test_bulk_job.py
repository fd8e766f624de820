"""The Change Many Twins window's IoT Hub job option, on a real local hub: it says what a
job cannot do, runs the job, shows its status and statistics until it ends, and Cancel
Job cancels it on the hub."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.test_patch_log import running_hub
from twin_explorer.ui.panes.bulk.dialog import BulkChangeDialog


def click(widget) -> None:
    assert widget.isVisible() and widget.isEnabled(), widget.objectName()
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


@contextlib.asynccontextmanager
async def job_window(qtbot, tmp_path, devices: list[str]) -> AsyncIterator:
    """A local hub with ``devices``, and the window on it: (service, dialog)."""
    async with running_hub(tmp_path / "hub") as server:
        service = service_for(server, sdk_retries=False)
        for device_id in devices:
            await service.create_device(device_id)
        dialog = BulkChangeDialog(lambda: service, runs_root=tmp_path / "runs")
        qtbot.addWidget(dialog)
        dialog.show()
        try:
            yield service, dialog
        finally:
            await dialog.aclose()
            await service.aclose()


def open_job_option(dialog: BulkChangeDialog, query: str, patch: str) -> None:
    dialog.query_edit.setText(query)
    dialog.patch_edit.setPlainText(patch)
    assert not dialog.job.start_button.isVisible()  # an option, closed until chosen
    assert dialog.preview_button.isEnabled()
    click(dialog.job.as_job)
    assert not dialog.preview_button.isEnabled()  # a job instead: nothing to preview
    dialog.job.poll_interval = 0.1


def test_a_job_from_the_window_changes_the_twins_and_shows_its_statistics(qtbot, qrun, tmp_path):
    async def scenario() -> None:
        async with job_window(qtbot, tmp_path, [f"j-{i}" for i in range(5)]) as (
            service, dialog,
        ):  # fmt: skip
            open_job_option(dialog, "SELECT * FROM devices", '{"tags": {"wave": 2}}')
            limits = dialog.job.limits.text()
            for cannot in ("no per-twin etag", "no preview of conflicts", "device twins only",
                           "no revert"):  # fmt: skip
                assert cannot in limits
            assert dialog.job.limits.isVisible()
            assert not dialog.job.cancel_button.isEnabled()

            click(dialog.job.start_button)
            await until(lambda: "completed" in dialog.job.status.text(), 30, "the job's end")
            assert "5 devices: 5 succeeded, 0 failed" in dialog.job.status.text()
            assert dialog.job.progress.value() == dialog.job.progress.maximum() == 5
            assert not dialog.job.cancel_button.isEnabled()
            assert dialog.job.start_button.isEnabled()  # another job may follow
            for i in range(5):
                assert (await service.get_twin(f"j-{i}")).tags == {"wave": 2}

    qrun(scenario(), timeout=60)


def test_cancel_job_cancels_it_on_the_hub(qtbot, qrun, tmp_path):
    async def scenario() -> None:
        async with job_window(qtbot, tmp_path, ["k-1"]) as (service, dialog):
            open_job_option(dialog, "SELECT * FROM devices", '{"tags": {"wave": 3}}')
            later = datetime.now(UTC) + timedelta(hours=1)
            dialog.job.start_edit.setText(later.isoformat(timespec="seconds"))
            click(dialog.job.start_button)
            await until(lambda: "scheduled" in dialog.job.status.text(), 30, "the job")
            job_id = dialog.job.job_id
            click(dialog.job.cancel_button)
            await until(lambda: "cancelled" in dialog.job.status.text(), 30, "the cancel")
            assert (await service.get_job(job_id))["status"] == "cancelled"
            assert (await service.get_twin("k-1")).tags in (None, {})

    qrun(scenario(), timeout=60)


def test_module_twins_cannot_be_a_job_and_the_window_says_so(qtbot, qrun, tmp_path):
    async def scenario() -> None:
        async with job_window(qtbot, tmp_path, []) as (_service, dialog):
            open_job_option(dialog, "SELECT * FROM devices.modules", '{"tags": {"x": 1}}')
            click(dialog.job.start_button)
            await until(lambda: "device twins only" in dialog.job.status.text(), 10, "why")
            assert dialog.job.job_id is None

    qrun(scenario(), timeout=60)
