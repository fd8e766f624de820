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


# B.7: iothub-errorcode -> (HTTP status, numeric code).
CODES: dict[str, tuple[int, int]] = {
    "ArgumentInvalid": (400, 400004),
    # Bulk registry and device scopes: azure-iot-sdk-csharp ErrorCode.cs and the
    # "Troubleshoot Azure IoT Hub error codes" page (400011, 400028, 413002).
    "DeviceDefinedMultipleTimes": (400, 400011),
    "InvalidDeviceScope": (400, 400028),
    "IotHubUnauthorizedAccess": (401, 401002),
    "DeviceNotFound": (404, 404001),
    "ModuleNotFound": (404, 404010),
    "DeviceNotOnline": (404, 404103),
    "DeviceAlreadyExists": (409, 409001),
    "ModuleAlreadyExistsOnDevice": (409, 409301),
    "PreconditionFailed": (412, 412001),
    "TooManyDevices": (413, 413002),
    "TooManyModulesOnDevice": (413, 413003),
    "ThrottlingException": (429, 429001),
    "GatewayTimeout": (504, 504101),
}


def hub_error(error_code: str, message: str) -> HubError:
    """The HubError for a B.7 error code."""
    status, numeric = CODES[error_code]
    return HubError(status, error_code, numeric, message)


class AuthError(HubError):
    """Authentication or authorization refused: REST 401, MQTT CONNACK 5."""

    def __init__(self, message: str) -> None:
        status, numeric = CODES["IotHubUnauthorizedAccess"]
        super().__init__(status, "IotHubUnauthorizedAccess", numeric, message)


def unauthorized(message: str) -> AuthError:
    return AuthError(message)


def argument_invalid(message: str) -> HubError:
    return hub_error("ArgumentInvalid", message)


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
    return hub_error("DeviceNotFound", f"Device {device_id!r} is not registered.")


def module_not_found(device_id: str, module_id: str) -> HubError:
    return hub_error(
        "ModuleNotFound", f"Module {module_id!r} is not registered on device {device_id!r}."
    )


def device_already_exists(device_id: str) -> HubError:
    return hub_error("DeviceAlreadyExists", f"A device with id {device_id!r} already exists.")


def module_already_exists(device_id: str, module_id: str) -> HubError:
    return hub_error(
        "ModuleAlreadyExistsOnDevice",
        f"A module with id {module_id!r} already exists on device {device_id!r}.",
    )


def precondition_failed(what: str, sent: str, current: str) -> HubError:
    return hub_error(
        "PreconditionFailed",
        f"Precondition failed: If-Match {sent!r} does not match the current {what} etag "
        f"{current!r}.",
    )


def too_many_modules(device_id: str, limit: int) -> HubError:
    return hub_error(
        "TooManyModulesOnDevice",
        f"Device {device_id!r} already has the maximum of {limit} modules.",
    )


def too_many_devices(count: int, limit: int) -> HubError:
    return hub_error(
        "TooManyDevices",
        f"The request lists {count} devices; a bulk registry operation takes at most {limit}.",
    )


def device_defined_multiple_times(device_id: str) -> HubError:
    return hub_error(
        "DeviceDefinedMultipleTimes", f"Device {device_id!r} appears more than once in the request."
    )


def invalid_device_scope(message: str) -> HubError:
    return hub_error("InvalidDeviceScope", message)


def device_not_online() -> HubError:
    """Method target not connected or not subscribed (B.7, worded as real hubs do)."""
    return hub_error("DeviceNotOnline", "Timed out waiting for device to connect.")


def gateway_timeout() -> HubError:
    """The device did not answer a method in time (B.7, worded as real hubs do)."""
    return hub_error("GatewayTimeout", "Timed out waiting for the response from device.")


class DiskFull(HubError):
    """The disk holding the data folder is full: writes fail, reads still work, and
    writes work again once there is space (507, as WebDAV's Insufficient Storage)."""

    def __init__(self, data_dir: object) -> None:
        super().__init__(
            507,
            "InsufficientStorage",
            507000,
            f"The local hub's disk is full (data folder {data_dir}).",
        )


def throttled(message: str = "The hub is throttling requests.") -> HubError:
    return hub_error("ThrottlingException", message)
