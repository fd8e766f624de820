"""Typed results of the service facade. Plain data: no SDK types escape this package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from twin_explorer.twin.identity import identity_path

AuthType = Literal["sas", "selfSigned", "certificateAuthority", "none"]


@dataclass(frozen=True)
class SasAuth:
    """Symmetric keys; None lets the hub generate them."""

    primary_key: str | None = field(default=None, repr=False)
    secondary_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class X509Auth:
    """Self-signed X.509: the hub matches the certificate's thumbprint."""

    primary_thumbprint: str
    secondary_thumbprint: str | None = None


@dataclass(frozen=True)
class CaAuth:
    """X.509 signed by a CA registered with the hub."""


Auth = SasAuth | X509Auth | CaAuth


@dataclass(frozen=True)
class Identity:
    """A device or a module as the registry describes it."""

    device_id: str
    module_id: str | None
    auth_type: str
    etag: str
    connection_state: str = "Disconnected"
    last_activity_time: str | None = None
    status: str | None = None  # devices only: enabled / disabled
    status_reason: str | None = None
    iot_edge: bool = False
    managed_by: str | None = None
    primary_key: str | None = field(default=None, repr=False)
    secondary_key: str | None = field(default=None, repr=False)
    primary_thumbprint: str | None = None
    secondary_thumbprint: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_module(self) -> bool:
        return self.module_id is not None

    @property
    def label(self) -> str:
        return identity_path(self.device_id, self.module_id)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Identity:
        auth = doc.get("authentication") or {}
        keys = auth.get("symmetricKey") or {}
        thumbs = auth.get("x509Thumbprint") or {}
        return cls(
            device_id=doc["deviceId"],
            module_id=doc.get("moduleId"),
            auth_type=auth.get("type") or "sas",
            etag=doc.get("etag") or "",
            connection_state=doc.get("connectionState") or "Disconnected",
            last_activity_time=doc.get("lastActivityTime"),
            status=doc.get("status"),
            status_reason=doc.get("statusReason"),
            iot_edge=bool((doc.get("capabilities") or {}).get("iotEdge")),
            managed_by=doc.get("managedBy"),
            primary_key=keys.get("primaryKey"),
            secondary_key=keys.get("secondaryKey"),
            primary_thumbprint=thumbs.get("primaryThumbprint"),
            secondary_thumbprint=thumbs.get("secondaryThumbprint"),
            raw=doc,
        )


@dataclass(frozen=True)
class Twin:
    """A twin exactly as the hub sent it (service view), with its etag."""

    doc: dict[str, Any]

    @property
    def etag(self) -> str:
        return self.doc.get("etag") or ""

    @property
    def device_id(self) -> str:
        return self.doc["deviceId"]

    @property
    def module_id(self) -> str | None:
        return self.doc.get("moduleId")

    @property
    def tags(self) -> dict[str, Any]:
        return self.doc.get("tags") or {}

    @property
    def desired(self) -> dict[str, Any]:
        return (self.doc.get("properties") or {}).get("desired") or {}

    @property
    def reported(self) -> dict[str, Any]:
        return (self.doc.get("properties") or {}).get("reported") or {}

    @property
    def configurations(self) -> dict[str, str]:
        return targeting_configurations(self.doc)


def targeting_configurations(doc: dict[str, Any]) -> dict[str, str]:
    """The automatic device management configurations that target a twin, by id, with
    their status on it: ``Applied`` (the one whose content it got) or ``Targeted``
    (outranked). IoT Hub lists them in the twin's ``configurations`` field."""
    found = doc.get("configurations")
    if not isinstance(found, dict):
        return {}
    return {
        str(config_id): str(entry.get("status", "")) if isinstance(entry, dict) else ""
        for config_id, entry in found.items()
    }


def configurations_text(doc: dict[str, Any]) -> str:
    """``configurations: high (Applied), low (Targeted)``, the applied one first; empty
    when none targets the twin."""
    found = targeting_configurations(doc)
    if not found:
        return ""
    ordered = sorted(found.items(), key=lambda item: (item[1] != "Applied", item[0]))
    return "configurations: " + ", ".join(f"{name} ({status})" for name, status in ordered)


@dataclass(frozen=True)
class QueryPage:
    items: list[dict[str, Any]]
    continuation: str | None
    item_type: str = "twin"


@dataclass(frozen=True)
class MethodResult:
    status: int
    payload: Any


@dataclass(frozen=True)
class HubStatistics:
    total_devices: int
    enabled_devices: int
    disabled_devices: int
    connected_devices: int | None = None
