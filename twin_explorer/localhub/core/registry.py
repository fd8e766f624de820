"""The identity registry: devices and modules with IoT Hub's REST semantics (B.3, B.4, D.1).

Creating an identity also creates its twin. Every write commits before returning, so
what a client was told has happened survives a crash.
"""

from __future__ import annotations

from typing import Any

from twin_explorer.localhub.core import identity as ident
from twin_explorer.localhub.core.context import CoreContext, RemovalReason
from twin_explorer.localhub.core.events import IdentityCreated, IdentityDeleted
from twin_explorer.localhub.core.twinview import module_root, twin_root, with_root
from twin_explorer.localhub.errors import (
    device_already_exists,
    device_not_found,
    module_already_exists,
    module_not_found,
    too_many_modules,
)
from twin_explorer.twin.document import TwinDocument

MAX_MODULES_PER_DEVICE = 50  # C.6
MAX_LIST_DEVICES = 1000  # GET /devices answers at most this many, like real hubs


class Registry:
    """Devices and modules (B.3, B.4)."""

    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx

    # -- devices ------------------------------------------------------------------------

    def put_device(self, device_id: str, body: object, if_match: str | None) -> dict[str, Any]:
        """PUT /devices/{id}: create (no If-Match) or update (If-Match, B.3)."""
        ident.validate_id(device_id, "device id")
        removal: RemovalReason | None = None
        with self.ctx.store.transaction():
            current = self.ctx.store.get_device(device_id)
            now = self.ctx.now()
            if current is None:
                if if_match is not None:  # an update of something that is not there
                    raise device_not_found(device_id)
                ((etag, generation),) = self.ctx.identity_tags()
                doc = ident.new_device(
                    device_id,
                    body,
                    etag=etag,
                    generation=generation,
                    find_edge=self._edge_with_scope,
                )
                self.ctx.store.save_device(doc)
                twin = TwinDocument.new(now)
                self.ctx.store.save_twin(device_id, "", twin.service_view(twin_root(doc)))
            else:
                if if_match is None:
                    raise device_already_exists(device_id)
                ident.check_if_match(if_match, current["etag"], "device")
                doc = ident.updated_device(
                    current,
                    body,
                    etag=self.ctx.next_etag(),
                    now=now,
                    find_edge=self._edge_with_scope,
                )
                self.ctx.store.save_device(doc)
                self._refresh_twin_roots(doc)
                if doc["status"] == "disabled" and current["status"] != "disabled":
                    removal = RemovalReason.DISABLED
                elif ident.credentials_changed(current, doc):
                    removal = RemovalReason.CREDENTIALS
        if current is None:
            self.ctx.bus.publish(IdentityCreated(device_id, None, now))
        self.ctx.emit_twin_written(device_id, None)
        if removal is not None:
            # Module sessions go too on a key change: simpler than a finer scope, and
            # their clients reconnect at once with still-valid module keys.
            self.ctx.emit_removed(device_id, None, removal)
        return doc

    def get_device(self, device_id: str) -> dict[str, Any]:
        self.ctx.flush_activity()
        return self.ctx.device(device_id)

    def delete_device(self, device_id: str, if_match: str | None) -> None:
        """DELETE /devices/{id}: the device, its modules and all their twins."""
        with self.ctx.store.transaction():
            current = self.ctx.device(device_id)
            ident.check_if_match(if_match, current["etag"], "device")
            self.ctx.store.delete_device(device_id)
        self.ctx.drop_activity(device_id, None)
        self.ctx.emit_removed(device_id, None, RemovalReason.DELETED)
        self.ctx.bus.publish(IdentityDeleted(device_id, None, self.ctx.now()))

    def list_devices(self, top: int | None = None) -> list[dict[str, Any]]:
        """GET /devices[?top=N]: at most 1000, ordered by id.

        "Any value outside the range of 1-1000 is considered to be 1000" (REST API
        "Devices - Get Devices", ``top``; azure-iot-hub ``get_devices`` docstring).
        """
        if top is None or not 1 <= top <= MAX_LIST_DEVICES:
            top = MAX_LIST_DEVICES
        self.ctx.flush_activity()
        return self.ctx.store.list_devices(top)

    def _edge_with_scope(self, scope: str) -> dict[str, Any] | None:
        """The edge device whose deviceScope is ``scope``: the scope names its id."""
        device_id = ident.scope_device_id(scope)
        device = self.ctx.store.get_device(device_id) if device_id else None
        if device and device["capabilities"].get("iotEdge") and device["deviceScope"] == scope:
            return device
        return None

    # -- modules ------------------------------------------------------------------------

    def put_module(
        self, device_id: str, module_id: str, body: object, if_match: str | None
    ) -> tuple[dict[str, Any], bool]:
        """PUT /devices/{d}/modules/{m}; returns (module, created) so REST can say 201."""
        ident.validate_id(device_id, "device id")
        ident.validate_id(module_id, "module id")
        removed = False
        with self.ctx.store.transaction():
            device = self.ctx.device(device_id)
            current = self.ctx.store.get_module(device_id, module_id)
            if current is None:
                if if_match is not None:
                    raise module_not_found(device_id, module_id)
                if self.ctx.store.count_modules(device_id) >= MAX_MODULES_PER_DEVICE:
                    raise too_many_modules(device_id, MAX_MODULES_PER_DEVICE)
                ((etag, generation),) = self.ctx.identity_tags()
                doc = ident.new_module(device_id, module_id, body, etag=etag, generation=generation)
                self.ctx.store.save_module(doc)
                twin = TwinDocument.new(self.ctx.now())
                root = module_root(doc, device)
                self.ctx.store.save_twin(device_id, module_id, twin.service_view(root))
            else:
                if if_match is None:
                    raise module_already_exists(device_id, module_id)
                ident.check_if_match(if_match, current["etag"], "module")
                doc = ident.updated_module(current, body, etag=self.ctx.next_etag())
                self.ctx.store.save_module(doc)
                self._rewrite_twin_root(device_id, module_id, module_root(doc, device))
                removed = ident.credentials_changed(current, doc)
        self.ctx.emit_twin_written(device_id, module_id)
        if current is None:
            self.ctx.bus.publish(IdentityCreated(device_id, module_id, self.ctx.now()))
            return doc, True
        if removed:
            self.ctx.emit_removed(device_id, module_id, RemovalReason.CREDENTIALS)
        return doc, False

    def get_module(self, device_id: str, module_id: str) -> dict[str, Any]:
        self.ctx.flush_activity()
        return self.ctx.module(device_id, module_id)

    def delete_module(self, device_id: str, module_id: str, if_match: str | None) -> None:
        with self.ctx.store.transaction():
            current = self.ctx.module(device_id, module_id)
            ident.check_if_match(if_match, current["etag"], "module")
            self.ctx.store.delete_module(device_id, module_id)
        self.ctx.drop_activity(device_id, module_id)
        self.ctx.emit_removed(device_id, module_id, RemovalReason.DELETED)
        self.ctx.bus.publish(IdentityDeleted(device_id, module_id, self.ctx.now()))

    def list_modules(self, device_id: str) -> list[dict[str, Any]]:
        self.ctx.flush_activity()
        self.ctx.device(device_id)
        return self.ctx.store.list_modules(device_id)

    # -- twin roots follow their identities ---------------------------------------------

    def _refresh_twin_roots(self, device: dict[str, Any]) -> None:
        """After a device write: its twin's root fields, and its modules' status."""
        device_id = device["deviceId"]
        self._rewrite_twin_root(device_id, "", twin_root(device))
        for module in self.ctx.store.list_modules(device_id):
            self._rewrite_twin_root(device_id, module["moduleId"], module_root(module, device))

    def _rewrite_twin_root(self, device_id: str, module_id: str, root: dict[str, Any]) -> None:
        doc = self.ctx.store.get_twin_doc(device_id, module_id)
        if doc is not None:  # every identity has a twin; nothing to fix if not
            self.ctx.store.save_twin(device_id, module_id, with_root(doc, root))
