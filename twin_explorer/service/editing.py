"""One manual twin edit, from load to save, without Qt (DESIGN "Data flow" 1).

``EditSession`` holds the twin an edit started from (its etag guards the save), the
user's text and what is wrong with it. Save sends the minimal merge patch of tags and
desired (``null`` for removed keys) with ``If-Match`` set to that etag. When the hub
answers 412, the session reads the current twin and:

* if nobody else touched tags or desired (a device reported, say), sends the same patch
  again with the new etag, since nothing the user saw is out of date;
* otherwise keeps a ``Conflict`` (theirs, mine, overlaps) and waits for the user to
  merge, overwrite or reload. The user's text is never dropped: reload keeps it in
  ``recoverable``, and ``restore_my_edit`` brings the conflict back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from twin_explorer.service import errors
from twin_explorer.service.edit_conflict import Choice, Conflict, Operation, find_conflict
from twin_explorer.service.edit_diff import CanonicalLayout, DiffRow, side_by_side
from twin_explorer.service.edit_status import DesiredStatus, desired_vs_reported
from twin_explorer.service.edit_text import (
    Validation,
    editable_part,
    pretty,
    readonly_part,
    validate_text,
)
from twin_explorer.service.models import Twin
from twin_explorer.twin import make_patch
from twin_explorer.twin.events import Direction, PatchEvent, Section
from twin_explorer.twin.identity import identity_path
from twin_explorer.twin.values import copy_json, json_equal

SOURCE = "editor"


class TwinService(Protocol):
    """What a session needs from ``HubService``."""

    async def get_twin(self, device_id: str, module_id: str | None = None) -> Twin: ...

    async def patch_twin(
        self, device_id: str, module_id: str | None, patch: dict[str, Any], etag: str | None
    ) -> Twin: ...

    async def replace_twin(
        self, device_id: str, module_id: str | None, twin: dict[str, Any], etag: str | None
    ) -> Twin: ...


class EditError(Exception):
    """The session cannot do what was asked (nothing loaded, invalid text, ...)."""


@dataclass(frozen=True)
class Saved:
    """The hub took the change; ``twin`` is what it holds now."""

    operation: Operation
    twin: Twin
    body: dict[str, Any]  # exactly what was sent
    event: PatchEvent  # for the app's patch stream
    retried: bool = False  # sent twice: the first etag was stale only through reported changes


@dataclass(frozen=True)
class Conflicted:
    """Someone else changed tags or desired first; nothing was written."""

    conflict: Conflict


SaveOutcome = Saved | Conflicted


@dataclass
class EditSession:
    device_id: str
    module_id: str | None = None
    base: dict[str, Any] | None = None  # the service-view twin the edit started from
    latest: dict[str, Any] | None = None  # the newest twin seen on the hub
    text: str = ""
    validation: Validation = field(default_factory=lambda: validate_text(""))
    conflict: Conflict | None = None
    recoverable: Conflict | None = None  # my edit, kept after "reload theirs"
    _base_part: dict[str, Any] = field(default_factory=dict, repr=False)
    _base_text: str = field(default="", repr=False)
    _base_lines: list[str] | None = field(default=None, repr=False)
    _layout: CanonicalLayout = field(default_factory=CanonicalLayout, repr=False)
    _patch_cache: tuple[Validation, dict, dict] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return identity_path(self.device_id, self.module_id)

    def same_twin(self, device_id: str, module_id: str | None) -> bool:
        return (device_id, module_id or None) == (self.device_id, self.module_id or None)

    # -- loading and typing ------------------------------------------------------------

    def load(self, twin: Twin | dict[str, Any]) -> Validation:
        """Start over from ``twin``: its editable part becomes the text."""
        doc = twin.doc if isinstance(twin, Twin) else twin
        self._rebase(doc)
        self.conflict = None
        return self.set_text(self._base_text)

    def _rebase(self, doc: dict[str, Any]) -> None:
        self.base = self.latest = doc
        self._base_part = editable_part(doc)
        self._base_text = pretty(self._base_part)
        self._base_lines = None

    def set_text(self, text: str) -> Validation:
        self.text = text
        if self.validation.text != text:
            self.validation = validate_text(text)
        return self.validation

    def observe(self, twin: Twin | dict[str, Any]) -> bool:
        """The hub's twin as read now. Reloads when there is no edit to keep; returns
        whether it did. With an edit, only ``latest`` moves (read-only view, statuses)."""
        doc = twin.doc if isinstance(twin, Twin) else twin
        if not self.dirty and self.conflict is None:
            self.load(doc)
            return True
        self.latest = doc
        return False

    @property
    def loaded(self) -> bool:
        return self.base is not None

    @property
    def etag(self) -> str:
        return (self.base or {}).get("etag") or ""

    @property
    def base_text(self) -> str:
        """The loaded twin's editable part, laid out as the editor shows it."""
        return self._base_text

    @property
    def dirty(self) -> bool:
        """Whether there is an edit that would be lost: a change of content, or text that
        does not parse yet (the user is in the middle of typing)."""
        if not self.loaded or self.text == self._base_text:
            return False
        if self.validation.document is None:
            return True
        return bool(self._changes())

    def _changes(self) -> dict[str, Any]:
        """The patch from the loaded twin to the current document, computed once per text."""
        cache = self._patch_cache
        if cache is None or cache[0] is not self.validation or cache[1] is not self._base_part:
            document = self.validation.document
            patch = make_patch(self._base_part, document) if document is not None else {}
            cache = self._patch_cache = (self.validation, self._base_part, patch)
        return cache[2]

    @property
    def changed_remotely(self) -> bool:
        """The hub's tags or desired moved on since the edit started."""
        if self.base is None or self.latest is None or self.latest is self.base:
            return False
        return not json_equal(editable_part(self.latest), self._base_part)

    @property
    def can_save(self) -> bool:
        return self.loaded and self.conflict is None and self.validation.ok and self.dirty

    # -- what a save would send -------------------------------------------------------

    def patch(self) -> dict[str, Any]:
        """The minimal merge patch from the loaded twin to the text (null deletes)."""
        self._valid_document()
        return copy_json(self._changes())

    def replacement(self) -> dict[str, Any]:
        """The PUT body: the whole editable document."""
        return self._valid_document()

    def _valid_document(self) -> dict[str, Any]:
        if not self.loaded:
            raise EditError("No twin is loaded.")
        validation = self.set_text(self.text)
        if not validation.ok or validation.document is None:
            first = validation.errors[0] if validation.errors else None
            where = f" ({first.where}: {first.message})" if first else ""
            raise EditError(f"The text has errors; fix them before saving{where}")
        return validation.document

    def diff(self) -> list[DiffRow]:
        """The edit against the loaded twin, side by side (empty sides while the text is
        not valid JSON: the diff shows the last valid state of neither)."""
        mine = self.validation.document
        if mine is None:
            return []
        if self._base_lines is None:  # the loaded side is laid out once per load
            self._base_lines = self._layout.lines(self._base_part)
        return side_by_side(self._base_lines, self._layout.lines(mine))

    def readonly_text(self, metadata: bool = True) -> str:
        """The read-only rest of the hub's newest twin; ``metadata=False`` leaves out the
        ``$metadata`` trees, which are often most of it (desired vs reported has the times)."""
        return pretty(readonly_part(self.latest or {}, metadata=metadata))

    def statuses(self) -> list[DesiredStatus]:
        return desired_vs_reported(self.latest or {})

    # -- talking to the hub ----------------------------------------------------------

    async def save(self, service: TwinService) -> SaveOutcome:
        """PATCH with If-Match = the loaded etag."""
        body = self.patch()
        if not body:
            raise EditError("Nothing to save: the text matches the twin on the hub.")
        return await self._send(service, Operation.PATCH, body, self.etag, retry=True)

    async def replace(self, service: TwinService) -> SaveOutcome:
        """PUT the editable document with If-Match = the loaded etag."""
        return await self._send(
            service, Operation.REPLACE, self.replacement(), self.etag, retry=True
        )

    async def _send(
        self,
        service: TwinService,
        operation: Operation,
        body: dict[str, Any],
        etag: str,
        *,
        retry: bool,
        retried: bool = False,
    ) -> SaveOutcome:
        # The twin the edit started from: the loaded one, or an open conflict's.
        origin = self.conflict.base if self.conflict is not None else self.base
        mine = self.conflict.mine if self.conflict is not None else self.validation.document
        my_text = self.conflict.my_text if self.conflict is not None else self.text
        assert origin is not None and mine is not None
        send = service.patch_twin if operation is Operation.PATCH else service.replace_twin
        text_sent = self.text
        try:
            twin = await send(self.device_id, self.module_id, body, etag)
        except errors.PreconditionFailed:
            current = await service.get_twin(self.device_id, self.module_id)
            self.latest = current.doc
            if retry and json_equal(editable_part(current.doc), editable_part(origin)):
                # Only reported or identity fields moved: the change still means what the
                # user saw. The hub checks the new etag again, so a race still conflicts.
                return await self._send(
                    service, operation, body, current.etag, retry=False, retried=True
                )
            self.conflict = find_conflict(operation, origin, current.doc, mine, my_text)
            return Conflicted(self.conflict)
        self._after_write(twin, text_sent)
        return Saved(operation, twin, body, self._event(operation, body, twin), retried)

    def _after_write(self, twin: Twin, text_sent: str) -> None:
        """Move the base to the hub's answer; keep whatever the user typed meanwhile."""
        self._rebase(twin.doc)
        self.conflict = None
        self.recoverable = None
        if self.text == text_sent:
            document = self.validation.document
            if document is None or not json_equal(document, self._base_part):
                self.set_text(self._base_text)  # the hub holds more (a merge, an overwrite)

    def _event(self, operation: Operation, body: dict[str, Any], twin: Twin) -> PatchEvent:
        desired = (body.get("properties") or {}).get("desired")
        tags = body.get("tags")
        if operation is Operation.REPLACE or (desired is not None and tags is not None):
            section, event_body = Section.TWIN, body
        elif desired is not None:
            section, event_body = Section.DESIRED, desired
        else:
            section, event_body = Section.TAGS, tags or {}
        # Tags have no $version of their own; the twin's root version is what they move.
        version = twin.desired.get("$version") if section is not Section.TAGS else None
        if version is None:
            version = twin.doc.get("version")
        return PatchEvent(
            device_id=self.device_id,
            module_id=self.module_id,
            direction=Direction.SENT,
            section=section,
            body=event_body,
            version=version if isinstance(version, int) else None,
            source=SOURCE,
            twin=twin.doc,
        )

    # -- resolving a conflict -----------------------------------------------------------

    def _open_conflict(self) -> Conflict:
        if self.conflict is None:
            raise EditError("There is no conflict to resolve.")
        return self.conflict

    def merge(self, choices: Mapping[tuple[str, ...], Choice] | None = None) -> Validation:
        """Their twin plus my change, in the editor, ready to review and save (against
        their etag). Raises ValueError if an overlap has no choice."""
        conflict = self._open_conflict()
        merged = conflict.merged(choices)
        self._rebase(conflict.theirs)
        self.conflict = None
        self.recoverable = conflict
        return self.set_text(pretty(merged))

    async def overwrite(self, service: TwinService) -> SaveOutcome:
        """Send my change again with their etag: my values win where we overlap (for a
        replace: my document replaces theirs). Another 412 gives a fresh conflict."""
        conflict = self._open_conflict()
        body = conflict.my_patch if conflict.operation is Operation.PATCH else conflict.mine
        self.recoverable = conflict
        return await self._send(service, conflict.operation, body, conflict.their_etag, retry=False)

    def reload_theirs(self) -> Validation:
        """Take the hub's twin; my edit stays recoverable (``restore_my_edit``)."""
        conflict = self._open_conflict()
        self.recoverable = conflict
        return self.load(conflict.theirs)

    def restore_my_edit(self) -> Conflict:
        """Bring back the edit kept by a reload or merge, as a conflict against the twin
        loaded now (which may have moved on again)."""
        kept = self.recoverable
        if kept is None or self.base is None:
            raise EditError("There is no earlier edit to restore.")
        self.conflict = find_conflict(kept.operation, kept.base, self.base, kept.mine, kept.my_text)
        self.set_text(kept.my_text)
        return self.conflict

    def discard(self) -> Validation:
        """Drop the edit: back to the loaded twin's text."""
        self.conflict = None
        return self.set_text(self._base_text)
