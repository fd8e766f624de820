"""Errors the hub answers with, carrying IoT Hub's exact REST semantics.

Every failure a client can see is a :class:`HubError`: HTTP status, the
``iothub-errorcode`` name, the numeric code and a plain message (reference B.7).
The network shells only translate one to the wire: :meth:`HubError.to_body` for REST,
:meth:`HubError.to_device_body` for an MQTT twin response (A.7).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


class HubError(Exception):
    """A failure with the status and codes IoT Hub would answer with."""

    def __init__(self, status: int, error_code: str, numeric: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.numeric = numeric
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.error_code!r}, {self.message!r})"

    def to_body(self, now: datetime | None = None) -> dict[str, str]:
        """The REST envelope real hubs send (B.7); the SDK never parses it, people do."""
        stamp = (now or datetime.now(UTC)).strftime("%m/%d/%Y %H:%M:%S")
        return {
            "Message": f"ErrorCode:{self.error_code};{self.message}",
            "ExceptionMessage": f"Tracking ID:{secrets.token_hex(16)}-TimeStamp:{stamp}",
        }

    def to_device_body(self, now: datetime | None = None) -> dict[str, Any]:
        """The newer envelope real hubs put in MQTT twin error responses (A.7)."""
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "errorCode": self.numeric,
            "trackingId": secrets.token_hex(16),
            "message": self.message,
            "timestampUtc": stamp,
        }


class AuthError(HubError):
    """Authentication or authorization refused: REST 401, MQTT CONNACK 5."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "IotHubUnauthorizedAccess", 401002, message)


def unauthorized(message: str) -> AuthError:
    return AuthError(message)


def argument_invalid(message: str) -> HubError:
    return HubError(400, "ArgumentInvalid", 400004, message)


def invalid_twin(issues: Iterable[object]) -> HubError:
    """A twin the hub refuses; ``issues`` are ``TwinIssue``-like (path, message)."""
    words = []
    for issue in issues:
        path = getattr(issue, "path", ())
        where = ".".join(path) if isinstance(path, tuple | list) else str(path)
        text = getattr(issue, "message", str(issue))
        words.append(f"{where}: {text}" if where else str(text))
    detail = "; ".join(words) or "the twin is not valid"
    return argument_invalid(f"Invalid twin: {detail}")


def device_not_found(device_id: str) -> HubError:
    return HubError(404, "DeviceNotFound", 404001, f"Device {device_id!r} is not registered.")


def module_not_found(device_id: str, module_id: str) -> HubError:
    return HubError(
        404,
        "ModuleNotFound",
        404010,
        f"Module {module_id!r} is not registered on device {device_id!r}.",
    )


def device_already_exists(device_id: str) -> HubError:
    return HubError(
        409, "DeviceAlreadyExists", 409001, f"A device with id {device_id!r} already exists."
    )


def module_already_exists(device_id: str, module_id: str) -> HubError:
    return HubError(
        409,
        "ModuleAlreadyExistsOnDevice",
        409301,
        f"A module with id {module_id!r} already exists on device {device_id!r}.",
    )


def precondition_failed(what: str, sent: str, current: str) -> HubError:
    return HubError(
        412,
        "PreconditionFailed",
        412001,
        f"Precondition failed: If-Match {sent!r} does not match the current {what} etag "
        f"{current!r}.",
    )


def too_many_modules(device_id: str, limit: int) -> HubError:
    return HubError(
        413,
        "TooManyModulesOnDevice",
        413003,
        f"Device {device_id!r} already has the maximum of {limit} modules.",
    )


def device_not_online(device_id: str, module_id: str | None = None) -> HubError:
    """Method target not connected or not subscribed (B.7, message as real hubs word it)."""
    del device_id, module_id  # the real message names neither
    return HubError(404, "DeviceNotOnline", 404103, "Timed out waiting for device to connect.")


def gateway_timeout() -> HubError:
    return HubError(
        504, "GatewayTimeout", 504101, "Timed out waiting for the response from device."
    )


def throttled(message: str = "The hub is throttling requests.") -> HubError:
    return HubError(429, "ThrottlingException", 429001, message)
