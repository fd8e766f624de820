"""One twin's state and how each hub operation changes it (reference C.1-C.7, A.6-A.8).

``TwinDocument`` is the state machine behind the local hub: service PATCH and PUT,
device reported PATCH, and the views the hub sends back. Every operation validates
first and changes nothing when it raises ``InvalidTwin``.

Rules this module settles [INF where the reference leaves a choice]:

* A write that changes nothing is a no-op: no version moves, no metadata is touched, and
  no notification is sent. Read-modify-write bodies (the whole twin from ``get_twin`` sent
  back, B.4) would otherwise bump desired ``$version`` and notify devices on every tag edit.
* When a section does change, the patch as received is what was applied: every node it
  names gets new metadata, and devices receive it whole (with its nulls) plus ``$version``.
* Service PATCH uses only ``tags`` and ``properties.desired``. Every other root field
  (deviceId, etag, version, status, ..., and ``properties.reported``) is ignored, as are
  ``$metadata``/``$version`` at the root of a section. A section given as null is absent.
* PUT replaces tags and desired; a missing one becomes ``{}``. Null members in a
  replacement are dropped, as merging it into an empty document would. PUT always counts
  as a desired write: ``$version`` moves and devices are notified.
* Device reported patches follow the same merge and no-op rules.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twin_explorer.twin.errors import InvalidTwin, TwinIssue
from twin_explorer.twin.limits import BOOKKEEPING_KEYS
from twin_explorer.twin.merge import is_noop, merge_patch
from twin_explorer.twin.metadata import (
    LAST_UPDATED,
    fresh_metadata,
    patched_metadata,
)
from twin_explorer.twin.validate import MAX_ISSUES, Section, check_size, validate_section
from twin_explorer.twin.values import copy_json

VERSION_KEY = "$version"
METADATA_KEY = "$metadata"


@dataclass
class TwinDocument:
    """Tags, desired and reported properties with their versions and ``$metadata`` trees.

    Section dicts hold only property keys; ``$version`` and ``$metadata`` are kept in the
    separate fields and added by the views.
    """

    tags: dict
    desired: dict
    reported: dict
    desired_version: int
    reported_version: int
    version: int
    desired_metadata: dict
    reported_metadata: dict

    @property
    def etag(self) -> str:
        """Twin etag: base64 of the root version as a big-endian 8-byte integer (C.5)."""
        return base64.b64encode(struct.pack(">q", self.version)).decode("ascii")

    @classmethod
    def new(cls, now: str) -> TwinDocument:
        """The twin of a newly created identity (C.1): both sections empty at ``$version`` 1."""
        return cls(
            tags={},
            desired={},
            reported={},
            desired_version=1,
            reported_version=1,
            version=1,
            desired_metadata={LAST_UPDATED: now},
            reported_metadata={LAST_UPDATED: now},
        )

    # ----------------------------------------------------------------- operations

    def apply_service_patch(self, body: Any, now: str) -> dict | None:
        """Service ``PATCH /twins/...`` (C.3): merge ``tags`` and ``properties.desired``.

        Returns the body to push to the identity's devices (C.7, A.8), i.e. the desired
        patch plus ``"$version"``, or None when desired did not change.
        Raises InvalidTwin, leaving the document unchanged, if anything is invalid.
        """
        issues: list[TwinIssue] = []
        tags_patch, desired_patch = _service_sections(body, issues)
        new_tags = self._merged("tags", self.tags, tags_patch, issues)
        new_desired = self._merged("desired", self.desired, desired_patch, issues)
        _raise_if(issues)

        tags_changed = tags_patch is not None and not is_noop(self.tags, tags_patch)
        if desired_patch is not None and is_noop(self.desired, desired_patch):
            desired_patch = None
        if not tags_changed and desired_patch is None:
            return None
        self.version += 1
        if tags_changed:
            self.tags = new_tags
        if desired_patch is None:
            return None
        self.desired_version += 1
        self.desired_metadata = patched_metadata(
            self.desired_metadata, self.desired, desired_patch, now, self.desired_version
        )
        self.desired = new_desired
        return {**copy_json(desired_patch), VERSION_KEY: self.desired_version}

    def replace(self, body: Any, now: str) -> dict:
        """Service ``PUT /twins/...`` (C.4): replace tags and desired; reported is kept.

        Returns the device notification: the full new desired, null for each top-level
        key the replacement removed, and ``"$version"``.
        """
        issues: list[TwinIssue] = []
        tags, desired = _service_sections(body, issues)
        new_tags = self._merged("tags", {}, tags or {}, issues)
        new_desired = self._merged("desired", {}, desired or {}, issues)
        _raise_if(issues)

        removed = [key for key in self.desired if key not in new_desired]
        self.version += 1
        self.desired_version += 1
        self.tags = new_tags
        self.desired = new_desired
        self.desired_metadata = fresh_metadata(new_desired, now, self.desired_version)
        notification = copy_json(new_desired)
        notification.update(dict.fromkeys(removed))
        notification[VERSION_KEY] = self.desired_version
        return notification

    def apply_reported_patch(self, patch: Any, now: str) -> int:
        """Device reported PATCH (A.7): merge into reported; returns the reported ``$version``."""
        issues = [] if isinstance(patch, dict) else validate_section("reported", patch)
        _raise_if(issues)
        reported_patch = _without_bookkeeping(patch)
        merged = self._merged("reported", self.reported, reported_patch, issues)
        _raise_if(issues)
        if is_noop(self.reported, reported_patch):
            return self.reported_version
        self.version += 1
        self.reported_version += 1
        self.reported_metadata = patched_metadata(
            self.reported_metadata, self.reported, reported_patch, now, None
        )
        self.reported = merged
        return self.reported_version

    @staticmethod
    def _merged(
        section: Section, current: dict, patch: dict | None, issues: list[TwinIssue]
    ) -> dict:
        """Validate ``patch`` and return ``current`` merged with it, noting every issue."""
        if patch is None:
            return current
        found = validate_section(section, patch, patch=True)
        issues.extend(found)
        if found:
            return current
        merged = merge_patch(current, patch)
        too_large = check_size(section, merged)
        if too_large is not None:
            issues.append(too_large)
        return merged

    # ---------------------------------------------------------------------- views

    def device_view(self) -> dict:
        """The MQTT twin GET body (A.6): properties with ``$version``, no ``$metadata``."""
        return {
            "desired": {**copy_json(self.desired), VERSION_KEY: self.desired_version},
            "reported": {**copy_json(self.reported), VERSION_KEY: self.reported_version},
        }

    def properties_view(self) -> dict:
        """The service view of ``properties`` (C.1), with ``$metadata`` and ``$version``."""
        return {
            "desired": {
                **copy_json(self.desired),
                METADATA_KEY: copy_json(self.desired_metadata),
                VERSION_KEY: self.desired_version,
            },
            "reported": {
                **copy_json(self.reported),
                METADATA_KEY: copy_json(self.reported_metadata),
                VERSION_KEY: self.reported_version,
            },
        }

    def service_view(self, identity: Mapping[str, Any] | None = None) -> dict:
        """A whole service-view twin (C.1): ``identity`` root fields, etag, version, sections."""
        return {
            **copy_json(dict(identity or {})),
            "etag": self.etag,
            "version": self.version,
            "tags": copy_json(self.tags),
            "properties": self.properties_view(),
        }

    # -------------------------------------------------------------------- storage

    def to_json(self) -> dict:
        """A JSON-ready dict for storage; ``from_json`` restores an equal document."""
        return {
            "tags": copy_json(self.tags),
            "desired": copy_json(self.desired),
            "reported": copy_json(self.reported),
            "desired_version": self.desired_version,
            "reported_version": self.reported_version,
            "version": self.version,
            "desired_metadata": copy_json(self.desired_metadata),
            "reported_metadata": copy_json(self.reported_metadata),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TwinDocument:
        """The document ``to_json`` produced. Raises ValueError on a malformed dict."""
        try:
            doc = cls(
                tags=copy_json(data["tags"]),
                desired=copy_json(data["desired"]),
                reported=copy_json(data["reported"]),
                desired_version=data["desired_version"],
                reported_version=data["reported_version"],
                version=data["version"],
                desired_metadata=copy_json(data["desired_metadata"]),
                reported_metadata=copy_json(data["reported_metadata"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a stored twin document: {exc}") from exc
        for name in ("tags", "desired", "reported", "desired_metadata", "reported_metadata"):
            if not isinstance(getattr(doc, name), dict):
                raise ValueError(f"not a stored twin document: {name} is not an object")
        for name in ("desired_version", "reported_version", "version"):
            value = getattr(doc, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"not a stored twin document: {name} is not an integer")
        return doc


def _service_sections(body: Any, issues: list[TwinIssue]) -> tuple[dict | None, dict | None]:
    """The tags and desired parts of a service PATCH/PUT body, bookkeeping keys removed."""
    if not isinstance(body, dict):
        issues.append(TwinIssue((), "the twin body must be a JSON object", "not-object"))
        return None, None
    tags = body.get("tags")
    if tags is not None and not isinstance(tags, dict):
        issues.extend(validate_section("tags", tags))
        tags = None
    properties = body.get("properties")
    desired = None
    if properties is not None and not isinstance(properties, dict):
        issues.append(TwinIssue(("properties",), "properties must be a JSON object", "not-object"))
    elif properties is not None:
        desired = properties.get("desired")
        if desired is not None and not isinstance(desired, dict):
            issues.extend(validate_section("desired", desired))
            desired = None
    return (
        None if tags is None else _without_bookkeeping(tags),
        None if desired is None else _without_bookkeeping(desired),
    )


def _without_bookkeeping(section: dict) -> dict:
    """``section`` without its root ``$metadata``/``$version`` (read-only, ignored on input)."""
    if not BOOKKEEPING_KEYS.intersection(section):
        return section
    return {k: v for k, v in section.items() if k not in BOOKKEEPING_KEYS}


def _raise_if(issues: list[TwinIssue]) -> None:
    if issues:
        raise InvalidTwin(issues[:MAX_ISSUES])
