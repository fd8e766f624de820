"""What the twin editor sends and how it settles: save, replace, the unsaved-edit question,
and the ways out of a conflict. Mixed into ``TwinEditor``; the state it works on (session,
service, busy flag, views) is the editor's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtWidgets import QMessageBox

from twin_explorer.service import errors
from twin_explorer.service.edit_conflict import Choice
from twin_explorer.service.edit_text import pretty
from twin_explorer.service.editing import Conflicted, EditError, Saved
from twin_explorer.ui.panes.twin_editor.layout import TAB_CONFLICT, TAB_EDIT
from twin_explorer.ui.panes.twin_editor.prompts import ask_unsaved, confirm_replace

Outcome = Saved | Conflicted
log = logging.getLogger(__name__)


class EditorWrites:
    """Save, replace, overwrite, merge, reload, restore; asking before an edit is dropped."""

    # -- unsaved edits ---------------------------------------------------------------------

    def has_unsaved(self) -> bool:
        if self.session is None:
            return False
        self.validate_now()
        return self.session.dirty or self.session.conflict is not None

    def ask_unsaved(
        self, proceed: Callable[[], None], cancel: Callable[[], None] | None = None
    ) -> QMessageBox:
        """Save / Discard / Cancel; ``proceed`` runs after a successful save or a discard."""
        assert self.session is not None
        cancelled = cancel or (lambda: None)

        def save() -> None:
            self._after_save = (proceed, cancelled)
            if self.session is None or self.session.conflict is not None or not self.save():
                self._after_save = None
                self._show_conflict_or_errors()
                cancelled()

        def discard() -> None:
            if self.session is not None:
                self.session.discard()
            proceed()

        self.unsaved_box = ask_unsaved(
            self.window(), self.session.label, on_save=save, on_discard=discard, on_cancel=cancelled
        )
        return self.unsaved_box

    def _show_conflict_or_errors(self) -> None:
        if self.session is not None and self.session.conflict is not None:
            self.ui.tabs.setCurrentIndex(TAB_CONFLICT)
        else:
            self.ui.tabs.setCurrentIndex(TAB_EDIT)

    def allow_close(self, retry: Callable[[], object]) -> bool:
        """For the window's closeEvent: True to close now; False while asking first."""
        if self._close_confirmed or not self.has_unsaved():
            return True

        def proceed() -> None:
            self._close_confirmed = True
            retry()

        self.ask_unsaved(proceed)
        return False

    # -- writing ---------------------------------------------------------------------------

    def save(self) -> asyncio.Task | None:
        """Send the minimal patch with the loaded etag, in the background."""
        self.validate_now()
        session = self.session
        if session is None or not self._service_ok() or self._busy or self._deleted:
            return None
        if not session.can_save:
            if session.validation.errors:
                first = session.validation.errors[0]
                self.ui.tabs.setCurrentIndex(TAB_EDIT)
                self.text_view.goto(first.offset, first.length)
                count = len(session.validation.errors)
                more = f" ({count} problems in all, listed below)" if count > 1 else ""
                self.ui.show_banner(
                    f"Not saved: line {first.line}, column {first.column}: {first.message}"
                    f"{more}. Fix it and save again; your text is kept.",
                    "error",
                )
            return None
        return self._write(session.save, "Saving…")

    def confirm_replace(self) -> QMessageBox | None:
        self.validate_now()
        session = self.session
        if session is None or not self._service_ok() or not session.validation.ok:
            return None
        body = pretty(session.replacement())
        self.replace_box = confirm_replace(self.window(), session.label, body, self.replace)
        return self.replace_box

    def replace(self) -> asyncio.Task | None:
        """PUT the editor's tags and desired (ask with ``confirm_replace`` first)."""
        if self.session is None or not self._service_ok() or self._busy:
            return None
        return self._write(self.session.replace, "Replacing…")

    def overwrite(self) -> asyncio.Task | None:
        if self.session is None or self.session.conflict is None or not self._service_ok():
            return None
        return self._write(self.session.overwrite, "Overwriting…")

    def _write(self, operation: Callable[[Any], Awaitable[Outcome]], busy: str) -> asyncio.Task:
        self.validate_now()
        self.ui.info.setText(busy)
        self._set_busy(True)
        follow_up, self._after_save = self._after_save, None
        return self._tasks.spawn(self._written(self.session, operation, follow_up))

    async def _written(self, session, operation, follow_up) -> Outcome | None:
        outcome: Outcome | None = None
        problem = ""
        try:
            outcome = await operation(self._service)
        except EditError as exc:
            problem = str(exc)
        except errors.NotFound as exc:
            problem = f"Not saved: {exc.text} Your text is kept here; copy it if you need it."
        except errors.ServiceError as exc:
            problem = f"Not saved: {exc.text} Your text is kept; try again."
        except Exception as exc:  # a bug: still a plain message, and the text stays
            log.error("saving the twin failed", exc_info=exc)
            problem = f"Not saved: something went wrong ({exc}). Your text is kept."
        finally:
            self._set_busy(False)
        if isinstance(outcome, Saved):
            self.patches.publish(outcome.event)  # sent is sent, whatever the editor shows now
        if session is self.session:
            if problem:
                self.ui.show_banner(problem, "error")
            self._show_outcome(outcome)
        if follow_up is not None:
            proceed, cancel = follow_up
            (proceed if isinstance(outcome, Saved) else cancel)()
            if not isinstance(outcome, Saved):
                self._show_conflict_or_errors()
        return outcome

    def _show_outcome(self, outcome: Outcome | None) -> None:
        if isinstance(outcome, Saved):
            version = outcome.twin.desired.get("$version")
            note = (
                " The twin had changed only in reported properties, so your change was "
                "applied on top of it."
                if outcome.retried
                else ""
            )
            done = "Replaced" if outcome.operation == "replace" else "Saved"
            text = f"{done} the twin of {self.session.label} (desired $version {version})."
            self.ui.show_banner(text + note, "info")
            self.statusMessage.emit(text)
        elif isinstance(outcome, Conflicted):
            self.ui.show_banner(
                "Someone else changed this twin first. Nothing was sent: compare both "
                "versions in Conflict, then merge, overwrite or reload.",
                "warning",
            )
        self._show_session()
        if isinstance(outcome, Conflicted):
            self.ui.tabs.setCurrentIndex(TAB_CONFLICT)

    # -- conflict and recovery ----------------------------------------------------------------

    def merge(self, choices: dict[tuple[str, ...], Choice]) -> None:
        self._resolve(
            lambda session: session.merge(choices),
            "Merged: the hub's twin with your change on top, in the editor. Check the Diff, "
            "then Save (it goes with the hub's new etag).",
        )

    def reload_theirs(self) -> None:
        self._resolve(
            lambda session: session.reload_theirs(),
            "Loaded the hub's twin. Your edit is kept: Twin ▸ Restore My Edit brings it back.",
        )

    def _resolve(self, step: Callable[[Any], object], done: str) -> None:
        """Settle the open conflict in the editor (nothing is sent), and say what happened."""
        if self.session is None or self.session.conflict is None:
            return
        try:
            step(self.session)
        except ValueError as exc:  # an overlap without a choice
            self.ui.show_banner(str(exc), "error")
            return
        self.ui.show_banner(done, "info")
        self.ui.tabs.setCurrentIndex(TAB_EDIT)
        self._show_session()

    def restore_my_edit(self) -> None:
        if self.session is None or self.session.recoverable is None:
            return
        try:
            self.session.restore_my_edit()
        except EditError as exc:
            self.ui.show_banner(str(exc), "error")
            return
        self._show_session()
        self.ui.tabs.setCurrentIndex(TAB_CONFLICT)

    def discard(self) -> None:
        if self.session is not None:
            self.session.discard()
            self.ui.show_banner("")
            self._show_session()

    def format_text(self) -> None:
        self.validate_now()
        if self.session is None or self.session.validation.document is None:
            return
        self._set_text(pretty(self.session.validation.document), undoable=True)
        self.validate_now()
