"""Direct methods over REST: the request body, the seam to the MQTT side, the odd error.

``POST /twins/{d}[/modules/{m}]/methods`` (B.4, B.5, B.7). The REST side only validates
and waits; delivering the request to a connected device is the job of whatever
implements :class:`MethodInvoker` (the MQTT server). Without one, no device can ever be
online, so every call fails the way a real hub fails for an offline device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.transports.rest.wire import nested_error_response, read_object

# B.7: responseTimeoutInSeconds defaults to 30 within 5..300; connectTimeoutInSeconds to
# 0 (the device must already be online) within 0..300.
RESPONSE_TIMEOUT_DEFAULT = 30
RESPONSE_TIMEOUT_RANGE = (5, 300)
CONNECT_TIMEOUT_DEFAULT = 0
CONNECT_TIMEOUT_RANGE = (0, 300)
MAX_PAYLOAD_BYTES = 128 * 1024  # C.6, each way
# The errors real hubs answer with the nested-string envelope (B.7).
NESTED_ERROR_CODES = frozenset({404103, 504101})


class MethodInvoker(Protocol):
    """Delivers a direct method to a connected device or module and awaits its answer.

    Returns ``(status, payload)`` as the device answered. Raises HubError 404103
    (DeviceNotOnline) when the target is not connected and subscribed to methods within
    ``connect_timeout`` seconds, and 504101 (GatewayTimeout) when it does not answer
    within ``response_timeout`` seconds.
    """

    async def invoke_method(
        self,
        device_id: str,
        module_id: str | None,
        name: str,
        payload: Any,
        response_timeout: float,
        connect_timeout: float,
    ) -> tuple[int, Any]: ...


@dataclass(frozen=True)
class MethodCall:
    name: str
    payload: Any
    response_timeout: int
    connect_timeout: int


def parse_method_call(body: Any) -> MethodCall:
    """Validate a CloudToDeviceMethod body (B.5) into a :class:`MethodCall`."""
    body = read_object(body, "method request")
    name = body.get("methodName")
    if not isinstance(name, str) or not name.strip():
        raise argument_invalid("methodName must be a non-empty string.")
    if len(name.encode("utf-8")) > 1024:
        raise argument_invalid("methodName is longer than 1024 bytes.")
    payload = body.get("payload")
    size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise argument_invalid(
            f"The method payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}."
        )
    return MethodCall(
        name=name,
        payload=payload,
        response_timeout=_seconds(
            body, "responseTimeoutInSeconds", RESPONSE_TIMEOUT_DEFAULT, RESPONSE_TIMEOUT_RANGE
        ),
        connect_timeout=_seconds(
            body, "connectTimeoutInSeconds", CONNECT_TIMEOUT_DEFAULT, CONNECT_TIMEOUT_RANGE
        ),
    )


def _seconds(body: dict[str, Any], key: str, default: int, bounds: tuple[int, int]) -> int:
    value = body.get(key)
    if value is None:
        return default
    # JSON numbers like 30.0 are fine; true/false and fractions are not.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise argument_invalid(f"{key} must be a whole number of seconds.")
    if value != int(value):
        raise argument_invalid(f"{key} must be a whole number of seconds, not {value}.")
    low, high = bounds
    if not low <= value <= high:
        raise argument_invalid(f"{key} must be between {low} and {high}, not {value:g}.")
    return int(value)


def method_error_response(error: HubError, timeout_seconds: int) -> web.Response:
    """The envelope real hubs send for an offline or silent device (B.7): the newer JSON
    error, as a string, inside ``Message``, with the timeout the hub waited."""
    return nested_error_response(error, {"timeout": _timespan(timeout_seconds)})


def _timespan(seconds: int) -> str:
    """.NET TimeSpan text, as the hub prints the timeout it waited: ``00:00:30``."""
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
