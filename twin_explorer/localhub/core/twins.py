"""Twin operations, service side (C.3, C.4) and device side (A.6, A.7).

The rules of each operation are ``twin.TwinDocument``'s, shared with the app; here they
meet storage, etags and notifications. The stored service view (``doc``) is rewritten on
every change so queries and GETs read it as is.
"""

from __future__ import annotations

from typing import Any

from twin_explorer.localhub.core.context import CoreContext
from twin_explorer.localhub.core.events import TwinChanged
from twin_explorer.localhub.core.identity import check_if_match
from twin_explorer.localhub.core.twinview import split_view
from twin_explorer.localhub.errors import argument_invalid, invalid_twin
from twin_explorer.twin.document import TwinDocument
from twin_explorer.twin.errors import InvalidTwin


class Twins:
    """Twin reads and writes, service side and device side."""

    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx

    # -- service side -------------------------------------------------------------------

    def get_twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        """GET /twins/{d}[/modules/{m}]: the service view with identity root fields."""
        self.ctx.flush_activity()
        doc = self.ctx.store.get_twin_doc(device_id, module_id or "")
        if doc is None:
            raise self.ctx.not_found(device_id, module_id)
        return doc

    def patch_twin(
        self, device_id: str, module_id: str | None, body: object, if_match: str | None
    ) -> dict[str, Any]:
        """PATCH /twins/...: merge tags and desired; If-Match against the twin etag."""
        return self._service_write(device_id, module_id, body, if_match, replace=False)

    def replace_twin(
        self, device_id: str, module_id: str | None, body: object, if_match: str | None
    ) -> dict[str, Any]:
        """PUT /twins/...: replace tags and desired (missing ones become {})."""
        return self._service_write(device_id, module_id, body, if_match, replace=True)

    def _service_write(
        self,
        device_id: str,
        module_id: str | None,
        body: object,
        if_match: str | None,
        *,
        replace: bool,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise argument_invalid("The twin must be a JSON object.")
        self.ctx.flush_activity()
        with self.ctx.store.transaction():
            root, twin = self._load(device_id, module_id)
            check_if_match(if_match, twin.etag, "twin")
            now = self.ctx.now()
            try:
                note = twin.replace(body, now) if replace else twin.apply_service_patch(body, now)
            except InvalidTwin as exc:
                raise invalid_twin(exc.issues) from None
            doc = self._save(device_id, module_id, root, twin)
        if note is not None:
            self.ctx.emit_desired(device_id, module_id, note)
        changed: dict[str, Any] = {}
        if "tags" in body:
            changed["tags"] = doc.get("tags", {})
        if note is not None:
            changed["properties"] = {"desired": note}
        if changed:
            patch = {k: v for k, v in (note or {}).items() if k != "$version"}
            self.ctx.bus.publish(
                TwinChanged(
                    device_id,
                    module_id,
                    now,
                    "desired" if note is not None else "tags",
                    (note or {}).get("$version", 0),
                    patch,
                    "replaceTwin" if replace else "updateTwin",
                    {"version": twin.version, **changed},
                )
            )
        return doc

    # -- device side --------------------------------------------------------------------

    def device_twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        """The MQTT twin GET body: ``{"desired": {...}, "reported": {...}}`` with $version."""
        _, twin = self._load(device_id, module_id)
        self.ctx.touch(device_id, module_id)
        return twin.device_view()

    def patch_reported(self, device_id: str, module_id: str | None, patch: object) -> int:
        """A device's reported PATCH (A.7); returns the new reported ``$version``."""
        if not isinstance(patch, dict):
            raise argument_invalid("The reported properties patch must be a JSON object.")
        with self.ctx.store.transaction():
            root, twin = self._load(device_id, module_id)
            before = twin.version
            try:
                version = twin.apply_reported_patch(patch, self.ctx.now())
            except InvalidTwin as exc:
                raise invalid_twin(exc.issues) from None
            changed = twin.version != before
            if changed:
                self._save(device_id, module_id, root, twin)
        self.ctx.touch(device_id, module_id)
        if changed:
            reported = {**patch, "$version": version}
            notification = {"version": twin.version, "properties": {"reported": reported}}
            event = TwinChanged(
                device_id,
                module_id,
                self.ctx.now(),
                "reported",
                version,
                patch,
                "updateTwin",
                notification,
            )
            self.ctx.bus.publish(event)
        return version

    # -- storage ------------------------------------------------------------------------

    def _load(self, device_id: str, module_id: str | None) -> tuple[dict, TwinDocument]:
        doc = self.ctx.store.get_twin_doc(device_id, module_id or "")
        if doc is None:
            raise self.ctx.not_found(device_id, module_id)
        return split_view(doc)

    def _save(
        self, device_id: str, module_id: str | None, root: dict[str, Any], twin: TwinDocument
    ) -> dict[str, Any]:
        view = twin.service_view(root)
        self.ctx.store.save_twin(device_id, module_id or "", view)
        return view
