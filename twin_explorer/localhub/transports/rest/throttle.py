"""Throttling on demand: the local hub answers twin writes over a rate with 429 and
``Retry-After``, as IoT Hub does when a hub's twin-update quota is used up.

Off unless turned on through ``/_localhub/throttle`` (RegistryWrite):

* ``PUT`` ``{"twinWritesPerSecond": 20, "retryAfterSeconds": 1, "burst": 20}``: a token
  bucket over twin PATCH and PUT; a write without a token gets 429 ThrottlingException;
* ``GET``: the setting and how many writes were refused; ``DELETE``: off again.

It lets a client's backoff be tested against a real hub, and shows people what their
tools do when a real hub throttles them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.transports.rest.wire import (
    error_response,
    json_response,
    read_json,
    read_object,
)

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

PATH = "/_localhub/throttle"
MAX_RETRY_AFTER = 60.0


class TwinWriteThrottle:
    def __init__(self) -> None:
        self.rate: float | None = None  # writes per second; None: off
        self.burst = 1.0
        self.retry_after = 1.0
        self.refused = 0
        self._tokens = 0.0
        self._stamp = 0.0

    def configure(self, rate: float | None, retry_after: float = 1.0, burst: float = 0) -> None:
        self.rate = rate
        self.retry_after = retry_after
        self.burst = max(1.0, burst or (rate or 1.0))
        self._tokens, self._stamp = self.burst, time.monotonic()
        self.refused = 0

    def admit(self) -> bool:
        if self.rate is None:
            return True
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False

    def state(self) -> dict[str, Any]:
        return {
            "twinWritesPerSecond": self.rate,
            "retryAfterSeconds": self.retry_after,
            "burst": self.burst,
            "refused": self.refused,
        }

    def middleware(self):
        @web.middleware
        async def throttle(request: web.Request, handler) -> web.StreamResponse:
            is_twin_write = request.method in ("PATCH", "PUT") and request.path.startswith(
                "/twins/"
            )
            if is_twin_write and not self.admit():
                error = HubError(
                    429, "ThrottlingException", 429001,
                    "Twin updates are being throttled: too many requests. Retry later.",
                )  # fmt: skip
                response = error_response(error)
                response.headers["Retry-After"] = f"{self.retry_after:g}"
                return response
            return await handler(request)

        return throttle

    def routes(self, core: HubCore) -> list[web.RouteDef]:
        async def get(request: web.Request) -> web.Response:
            core.authorize_service(request.headers.get("Authorization"), Right.REGISTRY_READ)
            return json_response(self.state())

        async def put(request: web.Request) -> web.Response:
            core.authorize_service(request.headers.get("Authorization"), Right.REGISTRY_WRITE)
            body = read_object(await read_json(request), "throttle setting")
            rate = _number(body, "twinWritesPerSecond", 0.001, 1_000_000)
            retry_after = _number(body, "retryAfterSeconds", 0, MAX_RETRY_AFTER, default=1.0)
            burst = _number(body, "burst", 1, 1_000_000, default=0)
            self.configure(rate, retry_after, burst)
            return json_response(self.state())

        async def delete(request: web.Request) -> web.Response:
            core.authorize_service(request.headers.get("Authorization"), Right.REGISTRY_WRITE)
            self.configure(None)
            return json_response(self.state())

        return [web.get(PATH, get), web.put(PATH, put), web.delete(PATH, delete)]


def _number(body: dict, name: str, low: float, high: float, default: float | None = None):
    value = body.get(name, default)
    if value is None and default is None:
        raise argument_invalid(f"{name} is required.")
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise argument_invalid(f"{name} must be a number from {low:g} to {high:g}.")
    return float(value)
