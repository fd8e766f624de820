"""The local hub's service REST API (aiohttp), as ``azure-iot-hub`` speaks it (reference B).

``create_app(core, invoker, info)`` builds the application; :class:`MethodInvoker` is the
seam through which direct methods reach connected devices.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.transports.rest.api import InfoSource, RestApi
from twin_explorer.localhub.transports.rest.bad_requests import quiet_malformed_requests
from twin_explorer.localhub.transports.rest.device import device_routes, too_large
from twin_explorer.localhub.transports.rest.methods import MethodInvoker
from twin_explorer.localhub.transports.rest.wire import MAX_BODY_BYTES, error_response

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

__all__ = ["MethodInvoker", "RestApi", "create_app"]

logger = logging.getLogger(__name__)


def create_app(
    core: HubCore,
    invoker: MethodInvoker,
    info: InfoSource | None = None,
) -> web.Application:
    """The REST application over ``core``; ``invoker`` delivers direct methods (the core's
    router: an identity that is not online answers 404103) and ``info`` feeds
    ``GET /_localhub/info``."""
    quiet_malformed_requests()
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    api = RestApi(core, invoker, info)
    app.add_routes(api.routes())
    app.add_routes(device_routes(core))

    async def on_shutdown(_: web.Application) -> None:
        await api.shutdown()

    async def on_cleanup(_: web.Application) -> None:
        await api.cleanup()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def _http_error(request: web.Request, exc: web.HTTPException) -> HubError:
    status = exc.status
    if status == 404:
        return HubError(404, "NotFound", 404000, "No such resource on this hub.")
    if status == 405:
        return HubError(405, "MethodNotAllowed", 405000, "This resource does not take that method.")
    if status == 413:  # aiohttp's own body limit, hit before a handler reads the body
        if (error := too_large(request)) is not None:
            return error
        return argument_invalid(
            f"The request body is larger than the {MAX_BODY_BYTES} bytes this hub accepts."
        )
    if status < 500:
        return HubError(status, "ArgumentInvalid", status * 1000 + 4, exc.reason or "Bad request.")
    return HubError(status, "ServerError", status * 1000, exc.reason or "Server error.")


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    """Every failure becomes the IoT Hub error envelope (B.7); nothing escapes as a bare
    aiohttp error page or a dropped connection."""
    try:
        return await handler(request)
    except HubError as error:
        if error.status >= 500:
            logger.warning("%s %s -> %s", request.method, clip(request.path), error)
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_http_error(request, exc))
    except RecursionError:
        return error_response(argument_invalid("The request is nested too deeply."))
    except Exception:
        logger.exception("unexpected failure in %s %s", request.method, clip(request.path))
        return error_response(
            HubError(500, "ServerError", 500000, "The hub failed to process the request.")
        )
