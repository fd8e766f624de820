"""The bulk change window: choose twins (the tree's selection or a query), write the
change once, preview it per twin, apply it with a progress bar, cancel, export the
report, revert the run. Every hub call runs as a task on the loop; the window only
reads the run's state on a timer, so the UI never waits for the hub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer
from PySide6.QtGui import QFontDatabase, QSyntaxHighlighter, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.service import errors
from twin_explorer.service.bulk.change import ChangeError, make_change, parse_change
from twin_explorer.service.bulk.choose import Ids, SelectionError, TwinSelection, count
from twin_explorer.service.bulk.report import write_report
from twin_explorer.service.bulk.run import BulkRun, Outcome, RunState, settle_heap
from twin_explorer.service.bulk.store import list_runs
from twin_explorer.service.edit_diff import unified
from twin_explorer.twin.events import PatchEvent
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import AsyncDialog
from twin_explorer.ui.panes.bulk.job import JobPanel
from twin_explorer.ui.panes.bulk.table import ALL, CHANGE, DETAIL, STATUSES, PreviewTableModel

DEFAULT_QUERY = "SELECT * FROM devices WHERE "
PLACEHOLDER_PATCH = (
    '{\n  "tags": {"building": 43},\n  "properties": {"desired": {"telemetryInterval": 30}}\n}'
)
TICK_MS = 250  # how often the window reads a running run's progress


class DiffColours(QSyntaxHighlighter):
    """Added, removed and hunk lines of a unified diff in the theme's diff colours."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.roles = {"+": "added", "-": "removed", "@": "hunk"}

    def highlightBlock(self, text: str) -> None:
        role = self.roles.get(text[:1])
        if role is None or text.startswith(("+++", "---")):
            return
        line = QTextCharFormat()
        line.setBackground(theme.colour(role))
        line.setForeground(theme.colour("text"))
        self.setFormat(0, len(text), line)


class BulkChangeDialog(AsyncDialog):
    def __init__(
        self,
        service: Callable[[], Any],
        publish: Callable[[PatchEvent], None] | None = None,
        parent: QWidget | None = None,
        *,
        runs_root: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("bulkChange")
        self.setWindowTitle("Change Many Twins")
        self.resize(980, 720)
        self._service, self._publish, self._runs_root = service, publish, runs_root
        self._ids: tuple[Ids, ...] = ()
        self.run: BulkRun | None = None
        self._applying = False

        # -- which twins
        self.use_selection = QRadioButton("Twins selected in the tree")
        self.use_selection.setObjectName("bulkUseSelection")
        self.use_selection.setToolTip("Change the twins selected in the device tree")
        self.use_query = QRadioButton("Twins a query selects:")
        self.use_query.setObjectName("bulkUseQuery")
        self.use_query.setToolTip("Change every twin a query selects, on devices or modules")
        self.query_edit = QLineEdit(DEFAULT_QUERY)
        self.query_edit.setObjectName("bulkQuery")
        self.query_edit.setToolTip(
            "SELECT * FROM devices [WHERE …] or SELECT * FROM devices.modules [WHERE …]"
        )
        self.count_button = QPushButton("Count")
        self.count_button.setObjectName("bulkCount")
        self.count_button.setToolTip("Count the twins the query selects, without reading them")
        self.twins_note = QLabel()
        self.twins_note.setObjectName("bulkTwinsNote")
        self.twins_note.setWordWrap(True)
        # -- the change
        self.patch_edit = QPlainTextEdit()
        self.patch_edit.setObjectName("bulkPatch")
        self.patch_edit.setPlaceholderText(PLACEHOLDER_PATCH)
        self.patch_edit.setToolTip(
            "A merge patch of tags and/or desired properties: a value sets a key, null "
            "removes it; the editor's rules and IoT Hub's limits apply"
        )
        self.patch_edit.setMaximumHeight(110)
        self.patch_note = QLabel()
        self.patch_note.setObjectName("bulkPatchNote")
        self.patch_note.setWordWrap(True)
        self.preview_button = QPushButton("Preview")
        self.preview_button.setObjectName("bulkPreview")
        self.preview_button.setToolTip(
            "Read every chosen twin and show what the change does to each; nothing is written"
        )
        # -- the preview
        self.status_filter = QComboBox()
        self.status_filter.setObjectName("bulkStatusFilter")
        self.status_filter.setToolTip("Show only the twins with this status")
        self.status_filter.addItem("All twins", ALL)
        for status in STATUSES:
            self.status_filter.addItem(status.capitalize(), status)
        self.text_filter = QLineEdit()
        self.text_filter.setObjectName("bulkTextFilter")
        self.text_filter.setPlaceholderText("Filter twins…")
        self.text_filter.setClearButtonEnabled(True)
        self.text_filter.setToolTip("Show only twins whose identity or change contains this")
        self.counts = QLabel()
        self.counts.setObjectName("bulkCounts")
        self.model = PreviewTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("bulkTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        # Rows of one height: the header need not measure 100,000 of them on a reset.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(CHANGE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(DETAIL, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 200)
        self.table.setColumnWidth(1, 80)
        self.diff = QPlainTextEdit()
        self.diff.setObjectName("bulkDiff")
        self.diff.setReadOnly(True)
        self.diff.setPlaceholderText("Choose a twin to see exactly what changes in it.")
        self.diff.setToolTip("What the change writes in the chosen twin, as a diff")
        self.diff.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.diff.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._diff_colours = DiffColours(self.diff.document())
        self.patch_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        # -- applying
        self.progress = QProgressBar()
        self.progress.setObjectName("bulkProgress")
        self.progress.setToolTip("Twins done of the twins in the run")
        self.progress_note = QLabel()
        self.progress_note.setObjectName("bulkProgressNote")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName("bulkApply")
        self.apply_button.setToolTip(
            "Write the change to every twin marked 'change', each guarded by the etag the "
            "preview read; a twin changed since is re-read and never overwritten silently"
        )
        self.cancel_button = QPushButton("Cancel Run")
        self.cancel_button.setObjectName("bulkCancel")
        self.cancel_button.setToolTip("Stop after the writes in flight; Apply resumes the rest")
        self.export_button = QPushButton("Export Report…")
        self.export_button.setObjectName("bulkExport")
        self.export_button.setToolTip("Save the per-twin report as JSON Lines or CSV")
        self.revert_button = QPushButton("Revert Run")
        self.revert_button.setObjectName("bulkRevert")
        self.revert_button.setToolTip(
            "Preview putting back, twin by twin, what this run applied (apply it to send)"
        )
        self.retry_button = QPushButton("Preview Conflicts Again")
        self.retry_button.setObjectName("bulkRetryConflicts")
        self.retry_button.setToolTip(
            "Read the twins that conflicted again and preview the same change on them as "
            "they are now: nothing of theirs is overwritten without a new preview"
        )
        self.resume_note = QLabel()
        self.resume_note.setObjectName("bulkResumeNote")
        self.resume_button = QPushButton("Open Unfinished Run")
        self.resume_button.setObjectName("bulkResume")
        self.resume_button.setToolTip("Show the run that was stopped before it finished")
        # -- or as an IoT Hub job
        self.job = JobPanel(self._service, self.selection, self._job_change, self.tasks, self)
        close = QPushButton("Close")
        close.setToolTip("Close this window; a running run goes on")
        close.clicked.connect(self.hide)

        self._layout(close)
        self._wire()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self.use_query.setChecked(True)
        self._find_unfinished()
        self._update()

    def _layout(self, close: QPushButton) -> None:
        query_row = QHBoxLayout()
        query_row.addWidget(self.use_query)
        query_row.addWidget(self.query_edit, 1)
        query_row.addWidget(self.count_button)
        form = QFormLayout()
        twins = QVBoxLayout()
        twins.addWidget(self.use_selection)
        twins.addLayout(query_row)
        twins.addWidget(self.twins_note)
        form.addRow("Twins", twins)
        change = QVBoxLayout()
        change.addWidget(self.patch_edit)
        change.addWidget(self.patch_note)
        form.addRow("Change", change)
        form.addRow("", self.job)
        resume = QHBoxLayout()
        resume.addWidget(self.resume_note, 1)
        resume.addWidget(self.resume_button)
        filters = QHBoxLayout()
        filters.addWidget(self.preview_button)
        filters.addWidget(self.status_filter)
        filters.addWidget(self.text_filter, 1)
        filters.addWidget(self.counts)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("bulkSplit")
        split.addWidget(self.table)
        split.addWidget(self.diff)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([260, 200])
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress_note, 1)
        for button in (
            self.apply_button, self.cancel_button, self.retry_button, self.export_button,
            self.revert_button, close,
        ):  # fmt: skip
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACING)
        layout.addLayout(resume)
        layout.addLayout(form)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        layout.addLayout(run_row)
        layout.addLayout(buttons)

    def _wire(self) -> None:
        self.use_selection.toggled.connect(self._update)
        self.job.as_job.toggled.connect(self._update)
        self.query_edit.textEdited.connect(lambda _text: self.twins_note.clear())
        self.count_button.clicked.connect(self.count_twins)
        self.patch_edit.textChanged.connect(lambda: self._note(self.patch_note, ""))
        self.preview_button.clicked.connect(self.preview)
        self.status_filter.currentIndexChanged.connect(self._filter)
        # Typing filters once it pauses: a run may hold 100,000 twins.
        self._filter_soon = QTimer(self, singleShot=True, interval=200)
        self._filter_soon.timeout.connect(self._filter)
        self.text_filter.textChanged.connect(lambda _text: self._filter_soon.start())
        self.table.selectionModel().selectionChanged.connect(self._row_chosen)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.show_export_dialog)
        self.revert_button.clicked.connect(self.revert)
        self.retry_button.clicked.connect(self.retry_conflicts)
        self.resume_button.clicked.connect(self._open_unfinished)

    # -- choosing twins -----------------------------------------------------------------

    def set_selected(self, ids: list[Ids]) -> None:
        """The tree's selection; with two or more twins it becomes the choice."""
        self._ids = tuple(ids)
        noun = "twin" if len(ids) == 1 else "twins"
        self.use_selection.setText(f"The {len(ids):,} {noun} selected in the tree")
        self.use_selection.setEnabled(bool(ids))
        # Two or more selected twins are surely the ones meant; one may be a query's start.
        (self.use_selection if len(ids) > 1 else self.use_query).setChecked(True)
        self._update()

    def selection(self) -> TwinSelection:
        if self.use_selection.isChecked():
            return TwinSelection.of(self._ids)
        return TwinSelection(self.query_edit.text())

    def count_twins(self) -> None:
        try:
            selection = self.selection()
        except SelectionError as exc:
            self._note(self.twins_note, str(exc), "error")
            return
        self._note(self.twins_note, "Counting…")
        task = self.tasks.spawn(self._count(selection), on_error=self._twins_failed)
        task.add_done_callback(lambda _task: self._update())

    async def _count(self, selection: TwinSelection) -> None:
        total = await count(self._need_service(), selection)
        self._note(self.twins_note, f"{total:,} twin{'s' if total != 1 else ''} selected.")

    def _twins_failed(self, exc: BaseException) -> None:
        self._note(self.twins_note, str(exc), "error")
        self._update()

    def _job_change(self) -> Any:
        try:
            return parse_change(self.patch_edit.toPlainText())
        except ChangeError as exc:
            self._note(self.patch_note, str(exc), "error")
            self.patch_edit.setFocus()
            raise

    # -- previewing ---------------------------------------------------------------------

    def preview(self) -> None:
        try:
            selection = self.selection()
        except SelectionError as exc:
            self._note(self.twins_note, str(exc), "error")
            return
        try:
            change = parse_change(self.patch_edit.toPlainText())
        except ChangeError as exc:
            self._note(self.patch_note, str(exc), "error")
            self.patch_edit.setFocus()
            return
        self._note(self.twins_note, "Counting…")
        self.preview_button.setEnabled(False)
        task = self.tasks.spawn(self._preview(selection, change), on_error=self._twins_failed)
        task.add_done_callback(lambda _task: self._update())  # Preview is offered again

    async def _preview(self, selection: TwinSelection, change: Any) -> None:
        service = self._need_service()
        settle_heap()  # before the count too: a full collection then stalls the window as well
        total = await count(service, selection)

        def read(done: int, of: int) -> None:
            self._note(self.twins_note, f"Previewing: {done:,} of {of:,} twins read…")

        read(0, total)
        run = await BulkRun.preview(
            service, selection, change, hub=getattr(service, "host", ""),
            root=self._runs_root, on_progress=read, total=total,
        )  # fmt: skip
        self._note(self.twins_note, f"{len(run.items):,} twins previewed; nothing written yet.")
        self.show_run(run)

    def show_run(self, run: BulkRun) -> None:
        self.run = run
        self.model.set_run(run)
        self.diff.clear()
        self._tick()
        self._update()

    # -- the table ----------------------------------------------------------------------

    def _filter(self, *_: object) -> None:
        self.model.set_filter(self.status_filter.currentData() or ALL, self.text_filter.text())
        self.diff.clear()

    def _row_chosen(self, selected: QItemSelection, _old: QItemSelection) -> None:
        rows = selected.indexes()
        item = self.model.item_at(rows[0].row()) if rows else None
        if item is None:
            self.diff.clear()
        elif not item.touches:
            self.diff.setPlainText(f"{item.identity}: {item.reason}")
        else:
            before, after = item.documents()
            self.diff.setPlainText(unified(before, after, "on the hub", "after the change"))

    # -- applying -----------------------------------------------------------------------

    def apply(self) -> None:
        run = self.run
        if run is None or self._applying or not run.pending():
            return
        self._applying = True
        self._timer.start()
        self.tasks.spawn(self._apply(run), on_error=self._apply_failed)
        self._update()

    async def _apply(self, run: BulkRun) -> None:
        try:
            progress = await run.apply(self._need_service(), publish=self._publish)
            if progress.remaining:
                self._note(
                    self.twins_note,
                    f"Stopped with {progress.remaining:,} twins still to do: Apply resumes.",
                )
            else:
                self._note(self.twins_note, "Done: each twin's outcome is in the table.")
        finally:
            self._applying = False
            self._timer.stop()
            self._tick()
            self._filter()
            self._update()

    def _apply_failed(self, exc: BaseException) -> None:
        self._note(self.progress_note, f"The run stopped: {exc}", "error")

    def cancel(self) -> None:
        if self.run is not None and self._applying:
            self.run.cancel()
            self._note(self.progress_note, "Cancelling after the writes in flight…")

    def retry_conflicts(self) -> None:
        run = self.run
        if run is None or self._applying or run.kind != "change":
            return
        ids = [key for key, r in run.results.items() if r.outcome is Outcome.CONFLICT]
        if not ids:
            return
        self.retry_button.setEnabled(False)
        change = make_change(run.plan["change"])
        task = self.tasks.spawn(
            self._preview(TwinSelection.of(ids), change), on_error=self._twins_failed
        )
        task.add_done_callback(lambda _task: self._update())

    def revert(self) -> None:
        if self.run is None or self._applying:
            return
        self.revert_button.setEnabled(False)
        self.tasks.spawn(self._revert(self.run), on_error=self._apply_failed)

    async def _revert(self, run: BulkRun) -> None:
        revert = await asyncio.to_thread(run.revert, self._runs_root)  # a big run: off the loop
        self._note(
            self.twins_note,
            f"Revert of run {run.id}: {len(revert.items):,} twins to put back. "
            "Apply sends it; a twin changed since the run is listed as a conflict.",
        )
        self.show_run(revert)

    def _tick(self) -> None:
        run = self.run
        if run is None:
            self.progress.setValue(0)
            self.progress_note.clear()
            self.counts.clear()
            return
        progress = run.progress()
        self.progress.setMaximum(max(1, progress.total))
        self.progress.setValue(progress.done)
        kind = "Revert" if run.kind == "revert" else "Run"
        self._note(self.progress_note, f"{kind} {run.id}: {progress.text()}")
        counts = self.model.counts()
        self.counts.setText(" · ".join(f"{n:,} {s}" for s, n in counts.items() if n))
        self.model.refresh()

    # -- report -------------------------------------------------------------------------

    def show_export_dialog(self) -> QFileDialog | None:
        if self.run is None:
            return None
        name = str(Path.home() / f"bulk-report-{self.run.id}.jsonl")
        dialog = QFileDialog(self, "Export Report", name)
        dialog.setObjectName("bulkExportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["JSON Lines (*.jsonl)", "CSV (*.csv)", "All files (*)"])
        dialog.setDefaultSuffix("jsonl")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.export)
        dialog.open()  # never exec(): no nested event loop
        return dialog

    def export(self, path: str) -> asyncio.Task | None:
        if self.run is None:
            return None
        return self.tasks.spawn(self._export(self.run, path))

    async def _export(self, run: BulkRun, path: str) -> int:
        try:  # a report of many twins takes a while to write: off the loop
            rows = await asyncio.to_thread(lambda: write_report(path, run.report()))
        except OSError as exc:
            self._note(self.progress_note, f"Could not write {path}: {exc.strerror}.", "error")
            return 0
        self._note(self.progress_note, f"Report of {rows:,} twins saved to {path}.", "ok")
        return rows

    # -- runs kept from before ----------------------------------------------------------

    def _find_unfinished(self) -> None:
        self._unfinished: Path | None = None
        for folder in list_runs(self._runs_root)[:20]:
            try:
                state = folder.read_plan().get("state")
            except (OSError, ValueError):
                continue
            if state in (RunState.RUNNING.value, RunState.CANCELLED.value):
                self._unfinished = folder.path
                self.resume_note.setText(
                    f"Run {folder.id} stopped before it finished (the app closed or it was "
                    "cancelled). Open it to see its twins and apply the rest."
                )
                break
        self.resume_note.setVisible(self._unfinished is not None)
        self.resume_button.setVisible(self._unfinished is not None)

    def _open_unfinished(self) -> None:
        if self._unfinished is None:
            return
        self.tasks.spawn(self._load(self._unfinished), on_error=self._twins_failed)

    async def _load(self, path: Path) -> None:
        run = await asyncio.to_thread(BulkRun.load, path)  # a big run: off the loop
        self._unfinished = None
        self.resume_note.hide()
        self.resume_button.hide()
        self._note(
            self.twins_note,
            f"Run {run.id}: {len(run.pending()):,} twins still to do. Apply resumes it.",
        )
        self.show_run(run)

    # -- state --------------------------------------------------------------------------

    def _need_service(self) -> Any:
        service = self._service()
        if service is None:
            raise errors.ServiceError("No hub is open: connect to a hub first.")
        return service

    def _note(self, label: QLabel, text: str, role: str | None = None) -> None:
        label.setText(text)
        # A style sheet costs a restyle: set it only when the colour changes (the
        # progress note is rewritten four times a second during a run).
        if label.property("noteRole") != (role or ""):
            label.setProperty("noteRole", role or "")
            theme.text_colour(label, role)

    def _update(self, *_: object) -> None:
        run, busy = self.run, self._applying
        has_hub = self._service() is not None
        per_twin = has_hub and not self.job.as_job.isChecked()  # a job runs instead
        self.query_edit.setEnabled(self.use_query.isChecked())
        self.count_button.setEnabled(has_hub and self.use_query.isChecked())
        self.preview_button.setEnabled(per_twin and not busy and not self.tasks.busy)
        pending = len(run.pending()) if run is not None else 0
        self.apply_button.setText(f"Apply to {pending:,} Twins" if pending else "Apply")
        self.apply_button.setEnabled(per_twin and pending > 0 and not busy)
        self.cancel_button.setEnabled(busy)
        self.export_button.setEnabled(run is not None)
        done = run is not None and not busy and run.kind == "change" and bool(run.results)
        self.revert_button.setEnabled(done)
        conflicts = run is not None and run.progress().counts[Outcome.CONFLICT] > 0
        self.retry_button.setEnabled(done and conflicts)

    @property
    def applying(self) -> bool:
        return self._applying

    def hub_changed(self) -> None:
        self._update()
        self.job.hub_changed()

    def done(self, result: int) -> None:
        # Closing (Escape, the title bar) only hides: a run goes on and the window shows
        # it again; the pane ends the work with the app (``aclose``).
        self.hide()
        self.setResult(result)

    async def aclose(self) -> None:
        if self.run is not None:
            self.run.cancel()
        self._timer.stop()
        await self.tasks.cancel_all()
