"""One small error hierarchy for everything the service side can hit.

SDK exceptions (msrest's HttpOperationError and ClientRequestError, requests' errors)
never leave this package: ``translate`` turns them into a ServiceError whose message
says, in plain words, which hub, which identity, what happened and what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from twin_explorer.connection.redact import redact


class ServiceError(Exception):
    """Base class. ``str()`` is a complete sentence fit for a message box."""

    status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        hub: str | None = None,
        identity: str | None = None,
        hint: str | None = None,
        detail: str | None = None,
        status: int | None = None,
        error_code: str | None = None,
    ) -> None:
        self.message = message
        self.hub = hub
        self.identity = identity
        self.hint = hint
        # What the hub said, redacted; shown under "Details".
        self.detail = redact(detail) if detail else None
        if status is not None:
            self.status = status
        self.error_code = error_code
        super().__init__(self.text)

    @property
    def text(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(self.hint)
        return " ".join(parts)


class NotFound(ServiceError):
    status = 404


class AlreadyExists(ServiceError):
    status = 409


class PreconditionFailed(ServiceError):
    """The etag we sent is stale: someone else changed it first."""

    status = 412


class Unauthorized(ServiceError):
    status = 401


class Throttled(ServiceError):
    status = 429
    retry_after: float | None = None  # seconds, from the hub's Retry-After header


class Unreachable(ServiceError):
    """No answer: DNS, refused connection, TLS trust, timeouts."""


class InvalidRequest(ServiceError):
    """The hub refused what we sent (400): an invalid twin, id or query."""

    status = 400


class InvalidTwin(InvalidRequest):
    pass


class DeviceOffline(ServiceError):
    """A direct method's target is not connected (404103)."""

    status = 404


class MethodTimeout(ServiceError):
    """The device did not answer a direct method in time (504101)."""

    status = 504


class QuotaExceeded(ServiceError):
    status = 413


class HubFailure(ServiceError):
    """The hub answered with a server error."""


class DiskFull(HubFailure):
    """The local hub's disk is full (507): nothing was lost, writes wait for space."""

    status = 507


@dataclass(frozen=True)
class HubReply:
    """What an HTTP error response told us, parsed out of IoT Hub's envelopes."""

    status: int
    error_code: str | None
    numeric: int | None
    text: str


def parse_error_body(status: int, headers: dict[str, str], body: str) -> HubReply:
    """Read IoT Hub's error envelopes (B.7): ErrorCode:<Code>;<text> and the newer JSON."""
    error_code = headers.get("iothub-errorcode")
    numeric: int | None = None
    text = body.strip()
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = doc.get("Message") or doc.get("message") or ""
        if isinstance(message, str) and message.startswith("{"):
            try:  # direct-method errors nest a JSON envelope inside Message
                inner = json.loads(message)
                numeric = inner.get("errorCode")
                message = inner.get("message", message)
            except ValueError:
                pass
        if isinstance(message, str) and message.startswith("ErrorCode:"):
            code, _, message = message[len("ErrorCode:") :].partition(";")
            error_code = error_code or code
        if isinstance(doc.get("errorCode"), int):
            numeric = doc["errorCode"]
        text = str(message)
    if numeric is None and error_code and error_code.isdigit():
        numeric = int(error_code)
    return HubReply(status=status, error_code=error_code, numeric=numeric, text=text)
