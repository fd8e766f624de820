"""The identity fields at the root of a service-view twin (C.1, B.6 Twin model).

They are read-only copies of the identity: ``deviceEtag`` is the identity etag, status
comes from the device (modules have none; a disabled device's modules are refused too),
and ``generationId``/``connectionStateUpdatedTime`` are not shown.
"""

from __future__ import annotations

from typing import Any

from twin_explorer.twin.document import METADATA_KEY, VERSION_KEY, TwinDocument

# Keys of a service-view twin that TwinDocument owns; the others are identity copies.
TWIN_KEYS = ("etag", "version", "tags", "properties")
# The configurations that target a twin, by id, with their status (core/configurations.py).
CONFIGURATIONS_KEY = "configurations"


def _common(identity: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
    auth = identity["authentication"]
    root: dict[str, Any] = {"deviceId": identity["deviceId"]}
    if "moduleId" in identity:
        root["moduleId"] = identity["moduleId"]
    root.update(
        deviceEtag=identity["etag"],
        status=device["status"],
        statusReason=device.get("statusReason"),
        statusUpdateTime=device["statusUpdatedTime"],
        connectionState=identity["connectionState"],
        lastActivityTime=identity["lastActivityTime"],
        cloudToDeviceMessageCount=identity["cloudToDeviceMessageCount"],
        authenticationType=auth["type"],
        x509Thumbprint=dict(auth["x509Thumbprint"]),
        modelId=device.get("modelId", ""),
    )
    return root


def twin_root(device: dict[str, Any]) -> dict[str, Any]:
    root = _common(device, device)
    root.update(
        capabilities=dict(device["capabilities"]),
        deviceScope=device.get("deviceScope"),
        parentScopes=list(device.get("parentScopes") or []),
    )
    return root


def module_root(module: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
    return _common(module, device)


def with_root(doc: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its identity root fields replaced by ``root`` (the configurations
    that target the twin stay: they are no identity field)."""
    kept = {key: doc[key] for key in (*TWIN_KEYS, CONFIGURATIONS_KEY) if key in doc}
    return {**root, **kept}


def split_view(doc: dict[str, Any]) -> tuple[dict[str, Any], TwinDocument]:
    """A stored service view back into (root fields, TwinDocument).

    The view holds the whole twin state, so ``twin.service_view(root)`` rebuilds ``doc``.
    """
    root = {key: value for key, value in doc.items() if key not in TWIN_KEYS}
    properties = doc["properties"]
    desired, reported = properties["desired"], properties["reported"]
    twin = TwinDocument(
        tags=doc["tags"],
        desired=_values(desired),
        reported=_values(reported),
        desired_version=desired[VERSION_KEY],
        reported_version=reported[VERSION_KEY],
        version=doc["version"],
        desired_metadata=desired[METADATA_KEY],
        reported_metadata=reported[METADATA_KEY],
    )
    return root, twin


def _values(section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in (METADATA_KEY, VERSION_KEY)}
