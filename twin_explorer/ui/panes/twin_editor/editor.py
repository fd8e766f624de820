"""The twin editor: load in the background, validate as you type, save a minimal patch with
the etag you started from, and never lose an edit (DESIGN "Data flow" 1).

The logic lives in ``service.editing.EditSession``; this widget shows it and runs its
hub calls as tasks on the qasync loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QTextCursor
from PySide6.QtWidgets import QListWidgetItem, QMessageBox, QWidget
from shiboken6 import isValid

from twin_explorer.service import errors
from twin_explorer.service.app_model import Selection
from twin_explorer.service.edit_text import Severity, pretty
from twin_explorer.service.editing import SOURCE, Conflicted, EditSession, Saved
from twin_explorer.service.models import configurations_text
from twin_explorer.twin.events import PatchEvent, PatchStream
from twin_explorer.twin.identity import identity_path
from twin_explorer.twin.limits import SECTION_MAX_BYTES
from twin_explorer.ui.chrome.pane_action import PaneAction, ToolbarEntry
from twin_explorer.ui.chrome.window_actions import SAVE
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tasks import Tasks
from twin_explorer.ui.panes.twin_editor.layout import (
    TAB_CONFLICT,
    TAB_DIFF,
    TAB_EDIT,
    TAB_STATUS,
    EditorLayout,
)
from twin_explorer.ui.panes.twin_editor.writing import EditorWrites

log = logging.getLogger(__name__)

VALIDATE_DELAY_MS = 150  # validate once typing pauses
REFRESH_DELAY_MS = 300  # coalesce bursts of patch events into one read

Outcome = Saved | Conflicted


def _load_failure(exc: Exception, label: str) -> str:
    if isinstance(exc, errors.NotFound):
        return (
            f"The twin of {label} is not on the hub any more: the device or module was "
            "deleted, or the device list is out of date. Refresh the device list."
        )
    if isinstance(exc, errors.Unreachable):
        return f"The twin of {label} could not be loaded: the hub did not answer.\n\n{exc.text}"
    if isinstance(exc, errors.ServiceError):
        return f"The twin of {label} could not be loaded.\n\n{exc.text}"
    return f"The twin of {label} could not be loaded: {exc}"


class TwinEditor(EditorWrites, QWidget):
    errorOccurred = Signal(object)
    statusMessage = Signal(str)

    def __init__(
        self,
        patches: PatchStream | None = None,
        selection: Selection | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setObjectName("twinEditorWidget")
        self.patches = patches if patches is not None else PatchStream()
        # Follows the selection; an unsaved edit is asked about before it changes.
        self.selection = selection if selection is not None else Selection()
        self.session: EditSession | None = None
        self._service: Any = None  # the window's hub (HubService)
        self._session_service: Any = None  # the hub the session's twin came from
        self._tasks = Tasks(on_error=self._unexpected)
        self._generation = 0
        self._busy = False
        self._busy_count = 0
        self._syncing = False
        self._reverting = False
        self._close_confirmed = False
        self.unsaved_box: QMessageBox | None = None
        self.replace_box: QMessageBox | None = None
        self._after_save: tuple[Callable[[], None], Callable[[], None]] | None = None
        self._readonly_key: tuple[int, bool] | None = None  # what the read-only view shows
        self._typed = False  # text typed since the last check (Save checks it first)
        self._deleted = False  # the session's twin was deleted from the hub
        self._statuses_stale = True

        self.ui = EditorLayout(self)
        self.text_view = self.ui.text_view
        self.conflict_view = self.ui.conflict_view
        self.status_view = self.ui.status_view
        self._build_actions()

        self._validate_timer = QTimer(self, singleShot=True, interval=VALIDATE_DELAY_MS)
        self._validate_timer.timeout.connect(self.validate_now)
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        # The read-only rest fills right after the editable text, so typing can start first.
        self._readonly_timer = QTimer(self, singleShot=True, interval=0)
        self._readonly_timer.timeout.connect(self._show_readonly)
        self.text_view.textChanged.connect(self._text_changed)
        self.ui.issues.itemActivated.connect(self._issue_clicked)
        self.ui.issues.itemClicked.connect(self._issue_clicked)
        self.ui.tabs.currentChanged.connect(self._tab_changed)
        self.ui.show_metadata.toggled.connect(self._show_readonly)
        self.conflict_view.mergeRequested.connect(self.merge)
        self.conflict_view.overwriteRequested.connect(self.overwrite)
        self.conflict_view.reloadRequested.connect(self.reload_theirs)
        stops = [
            self.patches.subscribe(self._patch_event),
            self.selection.subscribe(self._selection_changed),
            self.selection.deleted.subscribe(self.twins_deleted),
        ]
        self._unsubscribe = lambda: [stop() for stop in stops]
        theme.on_change(self, self._colour_issues)
        self._show_nothing("Select a device or module to see its twin.")

    def _build_actions(self) -> None:
        def action(text: str, name: str, slot: Callable[[], object], key=None) -> QAction:
            act = QAction(text, self)
            act.setObjectName(name)
            if key is not None:
                act.setShortcut(QKeySequence(key))
            act.triggered.connect(lambda _checked=False: slot())
            return act

        save_key = QKeySequence.StandardKey.Save
        self.save_action = action("&Save Twin", "saveTwin", self.save, save_key)
        self.replace_action = action("&Replace Twin…", "replaceTwin", self.confirm_replace)
        self.reload_action = action("Re&load Twin", "reloadTwin", self.refresh, "Ctrl+R")
        self.diff_action = action("Show &Diff", "showDiff", self.show_diff, "Ctrl+D")
        self.format_action = action("&Format JSON", "formatTwin", self.format_text, "Ctrl+Shift+F")
        self.discard_action = action("D&iscard Changes", "discardTwin", self.discard)
        self.restore_action = action("Restore &My Edit", "restoreEdit", self.restore_my_edit)
        self.ui.add_buttons((self.save_action, self.replace_action, self.reload_action))

    def pane_actions(self) -> list[PaneAction]:
        """The Twin menu's entries; Save is also on the toolbar."""
        save = ToolbarEntry(SAVE, "Save Twin")
        return [
            PaneAction("Twin", self.save_action, toolbar=save),
            PaneAction("Twin", self.replace_action),
            PaneAction("Twin", self.reload_action),
            PaneAction("Twin", self.diff_action, separator_before=True),
            PaneAction("Twin", self.format_action),
            PaneAction("Twin", self.discard_action),
            PaneAction("Twin", self.restore_action),
        ]

    # -- hub and tree ----------------------------------------------------------------------

    def set_service(self, service: Any) -> None:
        self._service = service
        old = self._session_service
        if service is not None and old is not None and service.host == old.host:
            self._session_service = service  # the same hub again: the etag still guards
            if self.ui.banner.property("kind") == "connection":
                self.ui.show_banner("")
        if self.session is not None and service is not self._session_service:
            if self.has_unsaved():
                self.ui.show_banner(
                    f"The hub connection changed. Your unsaved edit of {self.session.label} is "
                    "kept here so you can copy it; it can be saved only to the hub it came "
                    f"from ({old.host if old is not None else 'unknown'}).",
                    "connection",
                )
            else:
                self._show_nothing("Select a device or module to see its twin.")
        elif self.session is None:
            self._show_nothing(
                "Select a device or module to see its twin." if service else "No hub connected."
            )
        self._update_actions()

    def twins_deleted(self, ids: list[tuple[str, str | None]]) -> None:
        """These devices or modules were deleted: if the twin shown is one of them (or a
        module of a deleted device), it goes; an unsaved edit of it stays as text."""
        session = self.session
        if session is not None and any(
            device_id == session.device_id and module_id in (None, session.module_id)
            for device_id, module_id in ids
        ):
            self._show_deleted(session)

    def _show_deleted(self, session: EditSession) -> None:
        if self.has_unsaved():
            self._deleted = True
            self._validate_timer.stop()
            self.ui.show_banner(
                f"{session.label} was deleted from the hub. Your unsaved edit is kept below "
                "so you can copy it; it cannot be saved any more.",
                "error",
            )
            self._update_title()
            self._sync_read_only()
            self._update_actions()
            return
        self._generation += 1
        self.session = None
        self._show_nothing(
            f"{session.label} was deleted from the hub.\n\n"
            "Select a device or module to see its twin."
        )

    def _selection_changed(self, row: Any) -> None:
        if self._reverting or row is None:
            return  # None: the tree reloaded (filter, hub); the editor keeps its twin
        device_id, module_id = row.device_id, row.module_id
        if self.session is not None and self.session.same_twin(device_id, module_id):
            return
        if self.has_unsaved():
            self.ask_unsaved(lambda: self.open_twin(device_id, module_id), self._revert_selection)
            return
        self.open_twin(device_id, module_id)

    def _revert_selection(self) -> None:
        """Back to the row of the twin being edited."""
        if self.session is None:
            return
        self._reverting = True
        try:
            self.selection.request(self.session.device_id, self.session.module_id)
        finally:
            self._reverting = False

    # -- loading ---------------------------------------------------------------------------

    def open_twin(self, device_id: str, module_id: str | None = None) -> asyncio.Task | None:
        """Load a twin in the background (drops the current one: ask first if unsaved)."""
        self._generation += 1
        self.session = None
        self._deleted = False
        self._close_confirmed = False
        label = identity_path(device_id, module_id)
        if self._service is None:
            self._show_nothing("No hub connected.")
            return None
        self._show_nothing(f"Loading the twin of {label}…")
        self.ui.title.setText(f"<b>{label}</b>")
        self._set_busy(True)
        return self._tasks.spawn(self._load(self._generation, device_id, module_id, label))

    async def _load(self, generation: int, device_id: str, module_id: str | None, label: str):
        service = self._service
        try:
            twin = await service.get_twin(device_id, module_id)
        except Exception as exc:  # plain words in the editor area, never a traceback
            if not isinstance(exc, errors.ServiceError):
                log.error("loading a twin failed", exc_info=exc)
            if generation == self._generation:
                self._show_nothing(_load_failure(exc, label))
            return
        finally:
            self._set_busy(False)
        if generation != self._generation:
            return  # another twin was selected meanwhile
        session = EditSession(device_id, module_id)
        session.load(twin)
        self.session = session
        self._readonly_key = None
        self._session_service = service
        self.ui.show_banner("")
        self.ui.tabs.setCurrentIndex(TAB_EDIT)
        self._show_session()

    def refresh(self) -> asyncio.Task | None:
        """Read the twin again. With no edit the text follows; an edit is never touched
        (the read-only view and statuses follow, and a banner says the hub moved on)."""
        if self.session is None or self._service is None or self._busy:
            return None
        if not self._service_ok():
            if self.has_unsaved():
                return None  # the edit belongs to the previous connection; keep it
            return self.open_twin(self.session.device_id, self.session.module_id)
        return self._tasks.spawn(self._refresh(self.session))

    async def _refresh(self, session: EditSession) -> None:
        self.validate_now()
        try:
            twin = await self._service.get_twin(session.device_id, session.module_id)
        except errors.NotFound:
            if session is self.session:
                self._show_deleted(session)
            return
        except errors.ServiceError as exc:
            if session is self.session:
                self.ui.show_banner(f"Could not read the twin again: {exc.text}", "error")
            return
        if session is not self.session:
            return
        self.validate_now()  # what was typed while the twin was on its way counts too
        session.observe(twin)
        if session.changed_remotely:
            self.ui.show_banner(
                "The hub's tags or desired properties changed after you started editing. "
                "Your edit is kept; saving shows both versions side by side.",
                "warning",
            )
        self._show_session()

    def _patch_event(self, event: PatchEvent) -> None:
        if event.source == SOURCE or self.session is None or not event.changes_twin:
            return
        if self.session.same_twin(event.device_id, event.module_id):
            self._refresh_timer.start()

    # -- text and validation --------------------------------------------------------------

    def _text_changed(self) -> None:
        if not self._syncing and self.session is not None:
            self._validate_timer.start()
            self._update_title()
            if not self._typed:  # Save is on at once: it checks the text before sending
                self._typed = True
                self._update_actions()

    def validate_now(self) -> None:
        """Check the text now instead of when typing pauses."""
        self._validate_timer.stop()
        self._typed = False
        if self.session is None:
            return
        self.session.set_text(self.text_view.toPlainText())
        self._show_validation()

    def _colour_issues(self) -> None:
        for row in range(self.ui.issues.count()):
            item = self.ui.issues.item(row)
            error = item.data(Qt.ItemDataRole.UserRole).severity is Severity.ERROR
            item.setForeground(theme.colour("error" if error else "warning"))

    def _show_validation(self) -> None:
        session = self.session
        if session is None:
            return
        validation = session.validation
        self.text_view.set_issues(validation.issues)
        self.ui.issues.clear()
        for issue in validation.issues:
            item = QListWidgetItem(f"Line {issue.line}, column {issue.column}: {issue.message}")
            item.setData(Qt.ItemDataRole.UserRole, issue)
            self.ui.issues.addItem(item)
        self._colour_issues()
        self.ui.issues.setVisible(bool(validation.issues))
        errors_found = len(validation.errors)
        if validation.document is None or errors_found:
            first = validation.errors[0] if validation.errors else None
            where = f" First: {first.where}." if first else ""
            plural = "s" if errors_found != 1 else ""
            self.ui.validity.setText(
                f"✗ {errors_found} error{plural}: Save is off until they are fixed.{where}"
            )
            theme.text_colour(self.ui.validity, "error")
        else:
            sizes = " · ".join(
                f"{name} {validation.sizes.get(name, 0):,} / {SECTION_MAX_BYTES[name]:,} bytes"
                for name in ("tags", "desired")
            )
            changes = "unsaved changes" if session.dirty else "no changes"
            self.ui.validity.setText(f"✓ Valid for IoT Hub · {sizes} · {changes}")
            theme.text_colour(self.ui.validity, "ok")
        self._update_title()
        self._update_actions()
        if self.ui.tabs.currentIndex() == TAB_DIFF:
            self._show_diff()

    def _issue_clicked(self, item: QListWidgetItem) -> None:
        issue = item.data(Qt.ItemDataRole.UserRole)
        self.ui.tabs.setCurrentIndex(TAB_EDIT)
        self.text_view.goto(issue.offset, issue.length)

    def _set_text(self, text: str, *, undoable: bool = False) -> None:
        """Put the session's text in the view without it counting as typing."""
        self._syncing = True
        try:
            if undoable and self.text_view.toPlainText() != text:
                cursor = self.text_view.textCursor()
                cursor.select(QTextCursor.SelectionType.Document)
                cursor.insertText(text)
            else:
                self.text_view.replace_text(text)
        finally:
            self._syncing = False

    # -- showing ---------------------------------------------------------------------------

    def _show_nothing(self, message: str) -> None:
        self.ui.show_message(message)
        self.ui.title.setText("")
        self.ui.info.setText("")
        self.ui.show_banner("")
        self._update_actions()

    def _show_session(self) -> None:
        session = self.session
        if session is None:
            return
        self.ui.stack.setCurrentWidget(self.ui.tabs)
        if self.text_view.toPlainText() != session.text:
            self._set_text(session.text, undoable=self.text_view.document().characterCount() > 1)
        self._readonly_timer.start()
        self._statuses_stale = True
        if self.ui.tabs.currentIndex() == TAB_STATUS:
            self._show_statuses()
        targeted = configurations_text(session.latest or {})
        versions = self._versions_text(session)
        self.ui.info.setText(f"{versions} · {targeted}" if targeted else versions)
        self.ui.info.setToolTip(f"Automatic device management {targeted}" if targeted else versions)
        conflict = session.conflict
        self.ui.tabs.setTabEnabled(TAB_CONFLICT, conflict is not None)
        if conflict is not None:
            self.conflict_view.show_conflict(conflict)
        elif self.ui.tabs.currentIndex() == TAB_CONFLICT:
            self.ui.tabs.setCurrentIndex(TAB_EDIT)
        self._sync_read_only()
        self._show_validation()

    @staticmethod
    def _versions_text(session: EditSession) -> str:
        """Which etag a save is guarded by, and the hub's versions (newest seen)."""
        latest = session.latest or {}
        properties = latest.get("properties") or {}
        desired = (properties.get("desired") or {}).get("$version", "?")
        reported = (properties.get("reported") or {}).get("$version", "?")
        text = f"etag {session.etag} · desired $version {desired} · reported $version {reported}"
        if latest.get("etag") and latest.get("etag") != session.etag:
            text += f" · the hub has moved on to etag {latest['etag']}"
        return text

    def _update_title(self) -> None:
        if self.session is None:
            return
        # Until the pause-in-typing check runs, any change from the loaded text counts.
        shown = self.text_view.toPlainText()
        session = self.session
        dirty = session.dirty if shown == session.text else shown != session.base_text
        gone = " (deleted from the hub)" if self._deleted else ""
        self.ui.title.setText(f"<b>{session.label}</b>{' ●' if dirty else ''}{gone}")
        self.ui.title.setToolTip("Unsaved changes" if dirty else "")

    def _tab_changed(self, index: int) -> None:
        if index == TAB_DIFF:
            self.validate_now()
            self._show_diff()
        elif index == TAB_STATUS:
            self._show_statuses()

    def _show_statuses(self) -> None:
        """Desired vs reported, computed when its tab is looked at (it can be long)."""
        if self.session is not None and self._statuses_stale:
            self._statuses_stale = False
            self.status_view.show_statuses(self.session.statuses())

    def _show_readonly(self, *_: object) -> None:
        session = self.session
        if session is None:
            return
        metadata = self.ui.show_metadata.isChecked()
        key = (id(session.latest), metadata)
        if key != self._readonly_key:
            self._readonly_key = key
            self.ui.readonly_view.replace_text(session.readonly_text(metadata))

    def _show_diff(self) -> None:
        session = self.session
        if session is None:
            return
        self.ui.diff_view.set_titles(f"On the hub (etag {session.etag})", "Your edit")
        self.ui.diff_view.show_rows(session.diff())
        if session.validation.document is None:
            self.ui.patch_view.replace_text("// The text is not valid JSON yet.")
        else:
            self.ui.patch_view.replace_text(pretty(session.patch()))

    def show_diff(self) -> None:
        self.ui.tabs.setCurrentIndex(TAB_DIFF)

    def _set_busy(self, busy: bool) -> None:
        """Count the hub calls under way (a load can start while a save finishes)."""
        self._busy_count = max(0, self._busy_count + (1 if busy else -1))
        self._busy = self._busy_count > 0
        self.ui.busy.setVisible(self._busy)
        self._sync_read_only()
        self._update_actions()

    def _sync_read_only(self) -> None:
        locked = self._busy or self.session is None or self.session.conflict is not None
        locked = locked or self._deleted
        self.text_view.set_read_only(locked)

    def _service_ok(self) -> bool:
        return self._service is not None and self._service is self._session_service

    def _update_actions(self) -> None:
        session = self.session
        idle = session is not None and not self._busy and not self._deleted
        can_send = idle and self._service_ok()
        valid = session is not None and session.validation.ok
        typed = self._typed and session is not None and session.conflict is None
        self.save_action.setEnabled(can_send and (typed or session.can_save))
        self.replace_action.setEnabled(can_send and valid and session.conflict is None)
        self.reload_action.setEnabled(idle and self._service is not None)
        self.diff_action.setEnabled(session is not None)
        self.format_action.setEnabled(
            idle and session.validation.document is not None and session.conflict is None
        )
        self.discard_action.setEnabled(idle and session.dirty and session.conflict is None)
        self.restore_action.setEnabled(
            idle and session.recoverable is not None and session.conflict is None
        )

    # -- lifetime --------------------------------------------------------------------------

    def _unexpected(self, exc: BaseException) -> None:
        log.error("twin editor task failed", exc_info=exc)
        self.ui.show_banner(f"Something went wrong: {exc}. Your text is kept.", "error")
        self.errorOccurred.emit(exc)

    async def aclose(self) -> None:
        self._unsubscribe()
        for timer in (self._validate_timer, self._refresh_timer, self._readonly_timer):
            if isValid(timer):  # gone with the editor when the window was deleted first
                timer.stop()
        await self._tasks.cancel_all()
