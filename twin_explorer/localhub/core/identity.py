"""Device and module identity documents: validation, defaults, keys and etags.

Pure functions from a REST request body to the stored REST document (reference D.1,
B.5, B.6); the core persists what they return.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from twin_explorer.connection.sas import generate_key
from twin_explorer.localhub.errors import (
    argument_invalid,
    invalid_device_scope,
    precondition_failed,
)
from twin_explorer.twin.clock import NEVER

MAX_ID_LENGTH = 128
MAX_STATUS_REASON = 128
AUTH_TYPES = ("sas", "selfSigned", "certificateAuthority", "none")

# C.6: case-sensitive, <= 128 ASCII alphanumerics plus - : . + % _ # * ? ! ( ) , = @ ; $ '
_ID_CHARS = re.compile(r"[A-Za-z0-9\-:.+%_#*?!(),=@;$']+")
_HEX = re.compile(r"[0-9A-F]+")
# .NET ticks (100 ns since 0001-01-01) at the Unix epoch: real generationIds are tick
# counts, 18 digits today.
_EPOCH_TICKS = 621_355_968_000_000_000


def validate_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise argument_invalid(f"The {what} must be a non-empty string.")
    if len(value) > MAX_ID_LENGTH:
        raise argument_invalid(
            f"The {what} {value[:20]!r}... is {len(value)} characters long; "
            f"at most {MAX_ID_LENGTH} are allowed."
        )
    if not _ID_CHARS.fullmatch(value):
        bad = sorted({c for c in value if not _ID_CHARS.fullmatch(c)})
        raise argument_invalid(
            f"The {what} {value!r} contains characters that are not allowed: "
            f"{' '.join(repr(c) for c in bad)}. Use ASCII letters, digits and "
            "- : . + % _ # * ? ! ( ) , = @ ; $ '"
        )
    return value


def etag_text(counter: int) -> str:
    """Identity etag: base64 of decimal text, like real hubs' ``MA==``/``MjA0NjE2NDk5``."""
    return base64.b64encode(str(counter).encode()).decode()


def generation_id(epoch_ns: int, previous: int = 0) -> tuple[str, int]:
    """A fresh 18-digit tick string, strictly above ``previous`` (returned as int too)."""
    ticks = max(_EPOCH_TICKS + epoch_ns // 100, previous + 1)
    return str(ticks), ticks


def parse_if_match(value: str | None) -> str | None:
    """The etag an If-Match names: quotes and ``W/`` stripped; ``*`` for any (B.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:].strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return text


def check_if_match(if_match: str | None, current: str, what: str) -> None:
    """412 unless If-Match is absent, a wildcard or the current etag."""
    wanted = parse_if_match(if_match)
    if wanted is None or wanted == "*" or wanted == current:
        return
    raise precondition_failed(what, wanted, current)


def _body(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise argument_invalid("The request body must be a JSON object.")
    return body


def _check_path_id(body: dict[str, Any], key: str, expected: str) -> None:
    given = body.get(key)
    if given is not None and given != expected:
        raise argument_invalid(
            f"The {key} in the body ({given!r}) does not match the one in the URL ({expected!r})."
        )


def _key(value: object, which: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise argument_invalid(f"The {which} must be a base64 string.")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise argument_invalid(f"The {which} is not valid base64.") from None
    if not 16 <= len(raw) <= 64:
        raise argument_invalid(
            f"The {which} decodes to {len(raw)} bytes; keys must be 16 to 64 bytes long."
        )
    return value


def _thumbprint(value: object, which: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise argument_invalid(f"The {which} must be a hex string.")
    text = value.replace(":", "").replace(" ", "").upper()
    if not _HEX.fullmatch(text) or len(text) not in (40, 64):
        raise argument_invalid(
            f"The {which} {value!r} is not a SHA-1 (40 hex digits) or SHA-256 "
            "(64 hex digits) thumbprint."
        )
    return text


def authentication(body: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The stored ``authentication`` object for a request body (D.1).

    SAS keys missing from the body are kept from ``previous`` when updating a SAS
    identity, otherwise generated; X.509 and ``none`` identities hold null keys.
    """
    given = body.get("authentication") or {}
    if not isinstance(given, dict):
        raise argument_invalid("authentication must be a JSON object.")
    kind = given.get("type") or "sas"
    if kind not in AUTH_TYPES:
        raise argument_invalid(
            f"authentication.type {kind!r} is not one of {', '.join(AUTH_TYPES)}."
        )
    keys = given.get("symmetricKey") or {}
    prints = given.get("x509Thumbprint") or {}
    if not isinstance(keys, dict) or not isinstance(prints, dict):
        raise argument_invalid("symmetricKey and x509Thumbprint must be JSON objects.")
    primary_key = secondary_key = primary_print = secondary_print = None
    if kind == "sas":
        old = (previous or {}).get("symmetricKey") or {}
        primary_key = (
            _key(keys.get("primaryKey"), "primary key") or old.get("primaryKey") or generate_key()
        )
        secondary_key = (
            _key(keys.get("secondaryKey"), "secondary key")
            or old.get("secondaryKey")
            or generate_key()
        )
    elif kind == "selfSigned":
        primary_print = _thumbprint(prints.get("primaryThumbprint"), "primary thumbprint")
        secondary_print = _thumbprint(prints.get("secondaryThumbprint"), "secondary thumbprint")
        if primary_print is None:
            raise argument_invalid("A selfSigned identity needs a primary thumbprint.")
    return {
        "symmetricKey": {"primaryKey": primary_key, "secondaryKey": secondary_key},
        "x509Thumbprint": {
            "primaryThumbprint": primary_print,
            "secondaryThumbprint": secondary_print,
        },
        "type": kind,
    }


def _status(body: dict[str, Any]) -> tuple[str, str | None]:
    status = body.get("status") or "enabled"
    if not isinstance(status, str) or status.lower() not in ("enabled", "disabled"):
        raise argument_invalid(f"status {status!r} must be 'enabled' or 'disabled'.")
    reason = body.get("statusReason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_STATUS_REASON):
        raise argument_invalid(
            f"statusReason must be a string of at most {MAX_STATUS_REASON} characters."
        )
    return status.lower(), reason


def _iot_edge(body: dict[str, Any]) -> bool:
    caps = body.get("capabilities") or {}
    if not isinstance(caps, dict) or not isinstance(caps.get("iotEdge", False), bool):
        raise argument_invalid("capabilities.iotEdge must be true or false.")
    return bool(caps.get("iotEdge", False))


# -- device scopes ----------------------------------------------------------------------
#
# What is documented (Device.Scope / Twin.ParentScopes in Microsoft.Azure.Devices, the
# azure-iot-sdk-csharp PR that added ParentScopes, and the SDKs' end-to-end tests):
# * an edge device's scope is "auto-generated and immutable": "ms-azure-iot-edge://",
#   the device id, a dash and its generation id;
# * a leaf (non-edge) device joins an edge device by setting its deviceScope to that
#   edge device's scope; IoT Hub then lists that scope as its first parentScopes entry
#   (azure-iot-sdk-java RegistryManagerTests.deviceCreationWithDeviceScope);
# * an edge device's parent is named in parentScopes ("The scopes of the upper level
#   edge devices"); Azure CLI's ``device-identity parent set`` writes one scope there;
# * a leaf device cannot set a scope of its own: azure-iot-sdk-node's registry e2e test
#   expects an update with a made-up deviceScope to fail.
# Which error that failure carries is not documented; this hub answers 400
# InvalidDeviceScope (400028, "The device scope specified isn't valid", IoT Hub's error
# code list), the documented code that names it.

EDGE_SCOPE_PREFIX = "ms-azure-iot-edge://"
# Nested edge goes five layers deep (IoT Edge docs); a longer chain is a loop or junk.
MAX_EDGE_DEPTH = 8

FindEdge = Callable[[str], dict[str, Any] | None]


def no_edges(scope: str) -> None:
    """A FindEdge for a registry with no edge devices (fresh seeds)."""
    return None


def edge_scope(device_id: str, generation: str) -> str:
    return f"{EDGE_SCOPE_PREFIX}{device_id}-{generation}"


def scope_device_id(scope: str) -> str | None:
    """The edge device id a scope names, or None when it is not an edge scope."""
    if not scope.startswith(EDGE_SCOPE_PREFIX) or "-" not in scope[len(EDGE_SCOPE_PREFIX) :]:
        return None
    return scope[len(EDGE_SCOPE_PREFIX) : scope.rindex("-")]


def _scopes(body: dict[str, Any]) -> tuple[str | None, list[str]]:
    scope = body.get("deviceScope")
    parents = body.get("parentScopes")
    if isinstance(parents, str):  # the SDK wraps a str too (B.5)
        parents = [parents]
    if scope is not None and not isinstance(scope, str):
        raise argument_invalid("deviceScope must be a string.")
    if parents is None:
        parents = []
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise argument_invalid("parentScopes must be a list of strings.")
    return scope or None, [p for p in parents if p]


def _parent_edge(scope: str, find_edge: FindEdge, what: str) -> dict[str, Any]:
    parent = find_edge(scope)
    if parent is None:
        raise invalid_device_scope(
            f"The {what} {scope!r} is not the scope of an edge device on this hub; use the "
            "deviceScope of an existing IoT Edge device."
        )
    return parent


def _leaf_scopes(
    doc: dict[str, Any], scope: str | None, parents: list[str], find_edge: FindEdge
) -> None:
    if scope == edge_scope(doc["deviceId"], doc["generationId"]):
        scope = None  # its own scope from when it was an edge device: no parent now
    if scope is not None:
        _parent_edge(scope, find_edge, "deviceScope")
    wanted = [scope] if scope else []
    if parents and parents != wanted:
        raise invalid_device_scope(
            "A device that is not an IoT Edge device joins its parent through deviceScope; "
            f"parentScopes can only repeat it ({wanted!r}), not {parents!r}."
        )
    doc["deviceScope"], doc["parentScopes"] = scope, wanted


def _edge_scopes(
    doc: dict[str, Any], scope: str | None, parents: list[str], find_edge: FindEdge
) -> None:
    own = doc.get("deviceScope") if doc["capabilities"]["iotEdge"] else None
    own = own or edge_scope(doc["deviceId"], doc["generationId"])
    if scope is not None and scope != own:
        raise invalid_device_scope(
            "An IoT Edge device's deviceScope is generated by the hub and cannot be changed "
            f"(it is {own!r}); name its parent in parentScopes instead."
        )
    if len(parents) > 1:
        raise invalid_device_scope("An IoT Edge device can have only one parent.")
    for parent_scope in parents:
        ancestor = _parent_edge(parent_scope, find_edge, "parent scope")
        for _ in range(MAX_EDGE_DEPTH):
            if ancestor["deviceId"] == doc["deviceId"]:
                raise invalid_device_scope(
                    f"Device {doc['deviceId']!r} cannot be its own parent or ancestor."
                )
            above = ancestor.get("parentScopes") or []
            ancestor = find_edge(above[0]) if above else None
            if ancestor is None:
                break
        else:
            raise invalid_device_scope(f"The chain of parents above {parent_scope!r} is too deep.")
    doc["deviceScope"], doc["parentScopes"] = own, parents


def apply_scopes(
    doc: dict[str, Any], body: dict[str, Any], edge: bool, find_edge: FindEdge
) -> None:
    """Set ``doc``'s deviceScope and parentScopes from a request body by IoT Hub's rules
    (see above); ``doc`` still holds the identity's previous capabilities and scope.
    ``find_edge(scope)`` is the edge device owning ``scope``, if any."""
    scope, parents = _scopes(body)
    if edge:
        _edge_scopes(doc, scope, parents, find_edge)
    else:
        _leaf_scopes(doc, scope, parents, find_edge)
    doc["capabilities"] = {"iotEdge": edge}


def new_device(
    device_id: str,
    body: object,
    *,
    etag: str,
    generation: str,
    find_edge: FindEdge = no_edges,
) -> dict[str, Any]:
    """The stored document for a device created from a PUT body."""
    body = _body(body)
    _check_path_id(body, "deviceId", device_id)
    status, reason = _status(body)
    doc = {
        "deviceId": device_id,
        "generationId": generation,
        "etag": etag,
        "connectionState": "Disconnected",
        "status": status,
        "statusReason": reason,
        "connectionStateUpdatedTime": NEVER,
        "statusUpdatedTime": NEVER,
        "lastActivityTime": NEVER,
        "cloudToDeviceMessageCount": 0,
        "authentication": authentication(body, None),
        "capabilities": {"iotEdge": False},
        "deviceScope": None,
        "parentScopes": [],
        "modelId": "",
    }
    apply_scopes(doc, body, _iot_edge(body), find_edge)
    return doc


def updated_device(
    current: dict[str, Any], body: object, *, etag: str, now: str, find_edge: FindEdge
) -> dict[str, Any]:
    """The stored document after a PUT with If-Match: writable fields replaced."""
    body = _body(body)
    _check_path_id(body, "deviceId", current["deviceId"])
    status, reason = _status(body)
    doc = dict(current)
    doc.update(
        etag=etag,
        status=status,
        statusReason=reason,
        authentication=authentication(body, current["authentication"]),
    )
    apply_scopes(doc, body, _iot_edge(body), find_edge)
    if status != current["status"]:
        doc["statusUpdatedTime"] = now
    return doc


def new_module(
    device_id: str, module_id: str, body: object, *, etag: str, generation: str
) -> dict[str, Any]:
    body = _body(body)
    _check_path_id(body, "deviceId", device_id)
    _check_path_id(body, "moduleId", module_id)
    return {
        "moduleId": module_id,
        "managedBy": _managed_by(body),
        "deviceId": device_id,
        "generationId": generation,
        "etag": etag,
        "connectionState": "Disconnected",
        "connectionStateUpdatedTime": NEVER,
        "lastActivityTime": NEVER,
        "cloudToDeviceMessageCount": 0,
        "authentication": authentication(body, None),
    }


def updated_module(current: dict[str, Any], body: object, *, etag: str) -> dict[str, Any]:
    body = _body(body)
    _check_path_id(body, "deviceId", current["deviceId"])
    _check_path_id(body, "moduleId", current["moduleId"])
    doc = dict(current)
    doc.update(
        etag=etag,
        managedBy=_managed_by(body),
        authentication=authentication(body, current["authentication"]),
    )
    return doc


def _managed_by(body: dict[str, Any]) -> str | None:
    managed = body.get("managedBy")
    if managed is not None and not isinstance(managed, str):
        raise argument_invalid("managedBy must be a string or null.")
    return managed


def credentials_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return before["authentication"] != after["authentication"]
