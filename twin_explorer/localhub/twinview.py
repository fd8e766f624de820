"""The identity fields at the root of a service-view twin (C.1, B.6 Twin model).

They are read-only copies of the identity: ``deviceEtag`` is the identity etag, status
comes from the device (modules have none; a disabled device's modules are refused too),
and ``generationId``/``connectionStateUpdatedTime`` are not shown.
"""

from __future__ import annotations

from typing import Any


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
