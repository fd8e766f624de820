"""Bulk registry operations: ``POST /devices`` with up to 100 ExportImportDevice entries.

IoT Hub's REST API "Bulk Registry - Update Registry" (api-version 2021-04-12): "Creates,
updates, or deletes the identities of multiple devices ... A device identity can be
specified only once in the list. Different operations (create, update, delete) on
different devices are allowed. A maximum of 100 devices can be specified per
invocation." The answer is a BulkRegistryOperationResult, ``200`` when every entry
succeeded and ``400`` when some failed; azure-iot-hub accepts exactly those two
(``bulk_registry_operations.py``).

Not documented, so chosen here and kept close to what is documented:

* Every entry that can be applied is applied; each one that cannot is reported in
  ``errors`` with the error code and message its single-identity REST call would have
  answered (``DeviceAlreadyExists``, ``DeviceNotFound``, ``PreconditionFailed``, ...).
* A repeated device id fails the whole call, nothing applied, with one
  ``DeviceDefinedMultipleTimes`` (400011) error per repeated id: which repetition should
  win is not defined.
* More than 100 entries: 413 ``TooManyDevices`` (413002, "Too many devices were included
  in the bulk operation", azure-iot-sdk-csharp ErrorCode.cs).
* Property names and ``importMode`` are matched without regard to case, as IoT Hub's
  .NET JSON binding does: the Node service SDK sends ``"importMode": "Update"`` and the
  device's ``etag`` (azure-iothub ``Registry._processBulkDevices``), the Python one
  ``"importMode": "update"`` and ``eTag``.

All entries run in one store transaction, each in its own savepoint: a failed entry
leaves no trace and the batch costs one commit, not a hundred.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from twin_explorer.localhub.core.context import CoreContext
from twin_explorer.localhub.core.registry import Registry
from twin_explorer.localhub.core.twins import Twins
from twin_explorer.localhub.errors import (
    HubError,
    argument_invalid,
    device_defined_multiple_times,
    too_many_devices,
)

MAX_BULK_DEVICES = 100


class ImportMode(StrEnum):
    """ExportImportDevice.importMode values the REST bulk operation takes (2021-04-12)."""

    CREATE = "create"
    UPDATE = "update"
    UPDATE_IF_MATCH = "updateIfMatchETag"
    DELETE = "delete"
    DELETE_IF_MATCH = "deleteIfMatchETag"
    UPDATE_TWIN = "updateTwin"
    UPDATE_TWIN_IF_MATCH = "updateTwinIfMatchETag"


_MODES = {mode.value.lower(): mode for mode in ImportMode}
# ExportImportDevice's properties (azure-iot-hub export_import_device_py3.py), by their
# lower-case spelling.
_FIELDS = {
    name.lower(): name
    for name in (
        "id",
        "moduleId",
        "eTag",
        "importMode",
        "status",
        "statusReason",
        "authentication",
        "twinETag",
        "tags",
        "properties",
        "capabilities",
        "deviceScope",
        "parentScopes",
    )
}
# What a device PUT body takes from an entry.
_DEVICE_FIELDS = (
    "status",
    "statusReason",
    "authentication",
    "capabilities",
    "deviceScope",
    "parentScopes",
)


@dataclass(frozen=True)
class BulkEntry:
    device_id: str
    mode: ImportMode
    fields: dict[str, Any]


@dataclass(frozen=True)
class BulkError:
    """One DeviceRegistryOperationError of the result."""

    device_id: str | None
    error_code: str
    message: str
    operation: str | None = None

    @classmethod
    def of(
        cls, device_id: str | None, error: HubError, mode: ImportMode | None = None
    ) -> BulkError:
        return cls(device_id, error.error_code, error.message, mode.value if mode else None)

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "errorCode": self.error_code,
            "errorStatus": self.message,
            "moduleId": None,
            "operation": self.operation,
        }


def canonical_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The entry's known properties under their canonical names; an exact spelling wins
    over another casing of the same name, unknown properties are left out."""
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        name = _FIELDS.get(key.lower()) if isinstance(key, str) else None
        if name is not None and (name not in fields or key == name):
            fields[name] = value
    return fields


def read_entry(raw: object) -> BulkEntry:
    """One ExportImportDevice as a :class:`BulkEntry`, or a 400 HubError saying why not."""
    if not isinstance(raw, dict):
        raise argument_invalid("Each entry must be a JSON object (an ExportImportDevice).")
    fields = canonical_fields(raw)
    device_id = fields.get("id")
    if not isinstance(device_id, str) or not device_id:
        raise argument_invalid("The entry has no id: every entry needs the device id in 'id'.")
    if fields.get("moduleId") not in (None, ""):
        raise argument_invalid(
            "Bulk registry operations take device identities only; moduleId must be empty."
        )
    text = fields.get("importMode")
    mode = _MODES.get(text.lower()) if isinstance(text, str) else None
    if mode is None:
        raise argument_invalid(
            f"importMode {text!r} is not one of {', '.join(m.value for m in ImportMode)}."
        )
    return BulkEntry(device_id, mode, fields)


def _entry_id(raw: object) -> str | None:
    if isinstance(raw, dict):
        device_id = canonical_fields(raw).get("id")
        return device_id if isinstance(device_id, str) else None
    return None


def _required_etag(entry: BulkEntry, key: str) -> str:
    etag = entry.fields.get(key)
    if not isinstance(etag, str) or not etag:
        raise argument_invalid(f"importMode {entry.mode.value} needs the {key} to compare.")
    return etag


def _twin_patch(entry: BulkEntry) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    if entry.fields.get("tags") is not None:
        patch["tags"] = entry.fields["tags"]
    properties = entry.fields.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise argument_invalid("properties must be a JSON object.")
        if properties.get("desired") is not None:
            patch["properties"] = {"desired": properties["desired"]}
    return patch


class BulkRegistry:
    """Up to 100 device operations in one call, one commit."""

    def __init__(self, ctx: CoreContext, registry: Registry, twins: Twins) -> None:
        self.ctx = ctx
        self.registry = registry
        self.twins = twins

    def bulk_registry(self, entries: list[object]) -> list[BulkError]:
        """POST /devices: apply each entry; the errors of those that failed, in order."""
        if not entries:
            raise argument_invalid("The request lists no devices; send 1 to 100 entries.")
        if len(entries) > MAX_BULK_DEVICES:
            raise too_many_devices(len(entries), MAX_BULK_DEVICES)
        repeated = self._repeated_ids(entries)
        if repeated:
            return [
                BulkError.of(device_id, device_defined_multiple_times(device_id))
                for device_id in repeated
            ]
        errors: list[BulkError] = []
        with self.ctx.store.transaction():
            for raw in entries:
                entry: BulkEntry | None = None
                try:
                    entry = read_entry(raw)
                    self._apply(entry)
                except HubError as error:
                    if entry is None:
                        errors.append(BulkError.of(_entry_id(raw), error))
                    else:
                        errors.append(BulkError.of(entry.device_id, error, entry.mode))
        return errors

    @staticmethod
    def _repeated_ids(entries: list[object]) -> list[str]:
        seen: set[str] = set()
        repeated: dict[str, None] = {}  # ordered, each id once
        for raw in entries:
            device_id = _entry_id(raw)
            if device_id is None:
                continue
            if device_id in seen:
                repeated[device_id] = None
            seen.add(device_id)
        return list(repeated)

    def _apply(self, entry: BulkEntry) -> None:
        mode, device_id = entry.mode, entry.device_id
        if mode in (ImportMode.DELETE, ImportMode.DELETE_IF_MATCH):
            etag = _required_etag(entry, "eTag") if mode is ImportMode.DELETE_IF_MATCH else None
            self.registry.delete_device(device_id, etag)
            return
        if mode in (ImportMode.UPDATE_TWIN, ImportMode.UPDATE_TWIN_IF_MATCH):
            twin_etag = (
                _required_etag(entry, "twinETag")
                if mode is ImportMode.UPDATE_TWIN_IF_MATCH
                else None
            )
            self.twins.patch_twin(device_id, None, _twin_patch(entry), twin_etag)
            return
        body = {"deviceId": device_id}
        body.update((key, entry.fields[key]) for key in _DEVICE_FIELDS if key in entry.fields)
        if mode is ImportMode.CREATE:
            with self.ctx.store.transaction():  # the device and its initial twin, or neither
                self.registry.put_device(device_id, body, None)
                patch = _twin_patch(entry)
                if patch:
                    self.twins.patch_twin(device_id, None, patch, None)
            return
        etag = _required_etag(entry, "eTag") if mode is ImportMode.UPDATE_IF_MATCH else "*"
        self.registry.put_device(device_id, body, etag)
