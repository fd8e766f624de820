"""The bulk window's other way to apply a change: IoT Hub's own scheduled twin-update
job, for very large sets of device twins. It says plainly what a job cannot do, starts
the job, shows its status and device statistics until it ends, and cancels it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service import errors
from twin_explorer.service.bulk.change import BulkChange, ChangeError
from twin_explorer.service.bulk.choose import SelectionError, TwinSelection
from twin_explorer.service.bulk.jobs import (
    ENDED,
    LIMITS,
    POLL_SECONDS,
    JobUnsuitable,
    follow_job,
    job_text,
    start_job,
)
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks


class JobPanel(QWidget):
    """A check box that opens the job option, and the option itself."""

    def __init__(
        self,
        service: Callable[[], Any],
        selection: Callable[[], TwinSelection],
        change: Callable[[], BulkChange],
        tasks: Tasks,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._service, self._selection, self._change, self._tasks = (
            service, selection, change, tasks,
        )  # fmt: skip
        self.job_id: str | None = None
        self._ended = False  # the last reading said the job ended
        self._task: asyncio.Task | None = None
        self.poll_interval = POLL_SECONDS
        self.as_job = QCheckBox("Run as an IoT Hub job instead (very large sets of devices)")
        self.as_job.setObjectName("bulkAsJob")
        self.as_job.setToolTip(
            "Hand the change to IoT Hub, which writes every device twin the query selects "
            "itself: no preview, no etag, no revert"
        )
        self.limits = QLabel(LIMITS)
        self.limits.setObjectName("bulkJobLimits")
        self.limits.setWordWrap(True)
        theme.text_colour(self.limits, "warning")
        theme.on_change(self, lambda: theme.text_colour(self.limits, "warning"))
        self.start_edit = QLineEdit()
        self.start_edit.setObjectName("bulkJobStart")
        self.start_edit.setPlaceholderText("Start now, or at a time: 2026-12-24T18:00:00Z")
        self.start_edit.setToolTip("When IoT Hub starts the job (ISO 8601, UTC); empty: now")
        self.start_button = QPushButton("Start Job")
        self.start_button.setObjectName("bulkJobStartButton")
        self.start_button.setToolTip(
            "Send the change to IoT Hub as a scheduled twin-update job over the chosen devices"
        )
        self.cancel_button = QPushButton("Cancel Job")
        self.cancel_button.setObjectName("bulkJobCancel")
        self.cancel_button.setToolTip("Ask IoT Hub to cancel the job; twins it wrote stay written")
        self.progress = QProgressBar()
        self.progress.setObjectName("bulkJobProgress")
        self.progress.setToolTip("Devices the job has finished, of the devices it selected")
        self.status = QLabel()
        self.status.setObjectName("bulkJobStatus")
        self.status.setWordWrap(True)

        self.body = QWidget()
        row = QHBoxLayout()
        row.addWidget(self.start_edit, 1)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        inner = QVBoxLayout(self.body)
        inner.setContentsMargins(24, 0, 0, 0)
        inner.addWidget(self.limits)
        inner.addLayout(row)
        inner.addWidget(self.progress)
        inner.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.as_job, 0, Qt.AlignmentFlag.AlignLeft)  # clicks land on it
        layout.addWidget(self.body)

        self.as_job.toggled.connect(self._update)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self._update()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._ended

    def start(self) -> None:
        if self.running:
            return
        try:
            selection, change = self._selection(), self._change()
        except (SelectionError, ChangeError) as exc:
            self._say(str(exc), "error")
            return
        service = self._service()
        if service is None:
            self._say("No hub is open: connect to a hub first.", "error")
            return
        self.job_id, self._ended = None, False
        self._say("Starting the job…")
        self.progress.setValue(0)
        self._task = self._tasks.spawn(
            self._run(service, selection, change, self.start_edit.text()), on_error=self._failed
        )
        self._task.add_done_callback(lambda _task: self._update())
        self._update()

    async def _run(
        self, service: Any, selection: TwinSelection, change: BulkChange, start: str
    ) -> None:
        job = await start_job(service, selection, change, start=start or None)
        self.job_id = job["jobId"]
        self._show(job)
        job = await follow_job(service, job["jobId"], self._show, interval=self.poll_interval)
        stats = job.get("deviceJobStatistics") or {}
        ok = job.get("status") == "completed" and not stats.get("failedCount")
        self._say(job_text(job), "ok" if ok else "error")

    def _show(self, job: dict[str, Any]) -> None:
        self._ended = job.get("status") in ENDED
        stats = job.get("deviceJobStatistics") or {}
        self.progress.setMaximum(max(1, stats.get("deviceCount") or 0))
        self.progress.setValue((stats.get("succeededCount") or 0) + (stats.get("failedCount") or 0))
        self._say(job_text(job))
        self._update()

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, JobUnsuitable | errors.ServiceError):
            self._say(str(exc), "error")
        else:
            self._say(f"The job could not be followed: {exc}", "error")

    def cancel(self) -> None:
        if self.job_id is None or not self.running:
            return
        service = self._service()
        if service is None:
            return
        self.cancel_button.setEnabled(False)
        self._say(f"Cancelling job {self.job_id}…")
        self._tasks.spawn(service.cancel_job(self.job_id), on_error=self._failed)

    def hub_changed(self) -> None:
        self._update()

    def _say(self, text: str, role: str | None = None) -> None:
        self.status.setText(text)
        theme.text_colour(self.status, role)

    def _update(self, *_: object) -> None:
        self.body.setVisible(self.as_job.isChecked())
        running = self.running
        self.as_job.setEnabled(not running)
        self.start_edit.setEnabled(not running)
        self.start_button.setEnabled(not running and self._service() is not None)
        self.cancel_button.setEnabled(running and self.job_id is not None)
