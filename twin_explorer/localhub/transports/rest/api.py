"""The service REST API of the local hub: every route the service SDK uses (B.4), plus
a few ``/_localhub/`` routes for the app.

Handlers are thin: authorize with the right the route needs (B.9), read and shape the
request, call the synchronous core, shape the answer. The core's operations take well
under a millisecond, so they run on the event loop; query pages, which can take a
hundred milliseconds on a big registry, run on a worker thread (see ``queries``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.core.jobs import is_device_jobs_query
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.transports.rest import eventhub_admin, roles_admin
from twin_explorer.localhub.transports.rest.bulk import bulk_registry_response
from twin_explorer.localhub.transports.rest.certificates import certificate_routes
from twin_explorer.localhub.transports.rest.configurations import configuration_routes
from twin_explorer.localhub.transports.rest.jobs import device_jobs_response, job_routes
from twin_explorer.localhub.transports.rest.methods import (
    NESTED_ERROR_CODES,
    MethodInvoker,
    method_error_response,
    parse_method_call,
)
from twin_explorer.localhub.transports.rest.permissions import HANDLER_PERMISSIONS
from twin_explorer.localhub.transports.rest.queries import QueryRunner
from twin_explorer.localhub.transports.rest.wire import (
    int_param,
    json_bytes_response,
    json_response,
    no_content,
    read_json,
    read_object,
)

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
InfoSource = Callable[[], dict[str, Any]]

_TELEMETRY_LIMIT_MAX = 1000
_INT32 = (-(2**31), 2**31 - 1)


class RestApi:
    """Route handlers bound to one core, method invoker and info source."""

    def __init__(
        self,
        core: HubCore,
        invoker: MethodInvoker,
        info: InfoSource | None = None,
    ) -> None:
        self.core = core
        self.invoker = invoker
        self._info = info or dict
        self._queries = QueryRunner(core)
        self._waiting: set[asyncio.Future[tuple[int, Any]]] = set()
        self._closing = False

    async def cleanup(self) -> None:
        """Release the query thread once no request runs any more."""
        await self._queries.close()

    async def shutdown(self) -> None:
        """End every direct-method wait (503), so shutdown need not wait for devices."""
        self._closing = True
        for waiting in list(self._waiting):
            waiting.cancel()

    def routes(self) -> list[web.RouteDef]:
        read, write = Right.REGISTRY_READ, Right.REGISTRY_WRITE
        service = Right.SERVICE_CONNECT
        guard = self._guard
        device = "/devices/{device_id}"
        module = device + "/modules/{module_id}"
        twin = "/twins/{device_id}"
        module_twin = twin + "/modules/{module_id}"
        return [
            # Registered before /devices/{device_id}: same path shape, different method.
            web.post("/devices/query", guard((service, read), self.query)),
            web.get("/devices", guard(read, self.list_devices)),
            # The Node service SDK lists with devicePath("") = "/devices/" (azure-iothub
            # Registry.list).
            web.get("/devices/", guard(read, self.list_devices)),
            web.post("/devices", guard(write, self.bulk_registry)),
            web.put(device, guard(write, self.put_device)),
            web.get(device, guard(read, self.get_device)),
            web.delete(device, guard(write, self.delete_device)),
            web.get(device + "/modules", guard(read, self.list_modules)),
            web.put(module, guard(write, self.put_module)),
            web.get(module, guard(read, self.get_module)),
            web.delete(module, guard(write, self.delete_module)),
            web.get(twin, guard(service, self.get_twin)),
            web.patch(twin, guard(service, self.patch_twin)),
            web.put(twin, guard(service, self.replace_twin)),
            web.get(module_twin, guard(service, self.get_twin)),
            web.patch(module_twin, guard(service, self.patch_twin)),
            web.put(module_twin, guard(service, self.replace_twin)),
            web.post(twin + "/methods", guard(service, self.invoke_method)),
            web.post(module_twin + "/methods", guard(service, self.invoke_method)),
            web.get("/statistics/devices", guard(read, self.registry_statistics)),
            web.get("/statistics/service", guard(service, self.service_statistics)),
            web.get("/_localhub/info", guard(service, self.info)),
            web.get("/_localhub/telemetry/{device_id}", guard(service, self.telemetry)),
            web.get(
                "/_localhub/telemetry/{device_id}/modules/{module_id}",
                guard(service, self.telemetry),
            ),
            *job_routes(self.core, guard),
            *configuration_routes(self.core, guard),
            *eventhub_admin.routes(self.core, guard),
            *certificate_routes(self.core, guard),
            *roles_admin.routes(self.core, guard),
        ]

    def _guard(self, rights: Right | Iterable[Right], handler: Handler) -> Handler:
        wanted = rights if isinstance(rights, Right) else tuple(rights)
        permission = HANDLER_PERMISSIONS.get(handler.__name__)
        if permission is None:  # loud at start-up, not a silent default for every token
            raise LookupError(
                f"no Entra ID permission for the route handler {handler.__name__!r}: "
                "add it to rest/permissions.py"
            )

        async def guarded(request: web.Request) -> web.StreamResponse:
            self.core.authorize_request(
                request.headers.get("Authorization"),
                wanted,
                permission,
                request.method,
                request.path,
            )
            return await handler(request)

        guarded.__name__ = handler.__name__
        return guarded

    # -- devices and modules (B.4) ------------------------------------------------------

    async def put_device(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        device = self.core.put_device(_device_id(request), body, _if_match(request))
        return json_response(device)  # 200 for create and update alike: the SDK wants 200

    async def get_device(self, request: web.Request) -> web.Response:
        return json_response(self.core.get_device(_device_id(request)))

    async def delete_device(self, request: web.Request) -> web.Response:
        self.core.delete_device(_device_id(request), _if_match(request))
        return no_content()

    async def list_devices(self, request: web.Request) -> web.Response:
        top = int_param(request.query.get("top"), "top", *_INT32)
        return json_response(self.core.list_devices(top))

    async def bulk_registry(self, request: web.Request) -> web.Response:
        return await bulk_registry_response(self.core, request)

    async def put_module(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        module, created = self.core.put_module(
            _device_id(request), _module_id(request), body, _if_match(request)
        )
        return json_response(module, status=201 if created else 200)

    async def get_module(self, request: web.Request) -> web.Response:
        return json_response(self.core.get_module(_device_id(request), _module_id(request)))

    async def delete_module(self, request: web.Request) -> web.Response:
        self.core.delete_module(_device_id(request), _module_id(request), _if_match(request))
        return no_content()

    async def list_modules(self, request: web.Request) -> web.Response:
        return json_response(self.core.list_modules(_device_id(request)))

    # -- twins (B.4, C.3, C.4) ----------------------------------------------------------

    async def get_twin(self, request: web.Request) -> web.Response:
        return json_response(self.core.get_twin(_device_id(request), _optional_module(request)))

    async def patch_twin(self, request: web.Request) -> web.Response:
        body = read_object(await read_json(request), "twin patch")
        twin = self.core.patch_twin(
            _device_id(request), _optional_module(request), body, _if_match(request)
        )
        return json_response(twin)

    async def replace_twin(self, request: web.Request) -> web.Response:
        body = read_object(await read_json(request), "twin")
        twin = self.core.replace_twin(
            _device_id(request), _optional_module(request), body, _if_match(request)
        )
        return json_response(twin)

    # -- query (C.8) --------------------------------------------------------------------

    async def query(self, request: web.Request) -> web.Response:
        body = read_object(await read_json(request), "query request")
        # The core checks the text (empty, too long, syntax) and the page size range.
        page_size = int_param(
            request.headers.get("x-ms-max-item-count"), "x-ms-max-item-count", *_INT32
        )
        continuation = request.headers.get("x-ms-continuation") or None
        if is_device_jobs_query(body.get("query")):
            return await device_jobs_response(self.core, body["query"], page_size, continuation)
        page, payload = await self._queries.page(body.get("query"), page_size, continuation)
        headers = {"x-ms-item-type": page.item_type}
        if page.continuation:
            headers["x-ms-continuation"] = page.continuation
        return json_bytes_response(payload, headers=headers)

    # -- statistics and methods ---------------------------------------------------------

    async def registry_statistics(self, request: web.Request) -> web.Response:
        return json_response(self.core.registry_statistics())

    async def service_statistics(self, request: web.Request) -> web.Response:
        return json_response(self.core.service_statistics())

    async def invoke_method(self, request: web.Request) -> web.Response:
        device_id, module_id = _device_id(request), _optional_module(request)
        call = parse_method_call(await read_json(request))
        self._require_identity(device_id, module_id)  # unknown is not the same as offline
        if self._closing:
            raise shutting_down()
        waiting = asyncio.ensure_future(
            self.invoker.invoke_method(
                device_id,
                module_id,
                call.name,
                call.payload,
                call.response_timeout,
                call.connect_timeout,
            )
        )
        self._waiting.add(waiting)
        try:
            status, payload = await waiting
        except asyncio.CancelledError:
            # Our own shutdown cancelled the wait: answer. A cancelled handler (the
            # client went away) just stops.
            if self._closing and not asyncio.current_task().cancelling():
                raise shutting_down() from None
            raise
        except HubError as error:
            if error.numeric not in NESTED_ERROR_CODES:
                raise
            waited = call.connect_timeout if error.numeric == 404103 else call.response_timeout
            return method_error_response(error, waited)
        finally:
            self._waiting.discard(waiting)
        return json_response({"status": status, "payload": payload})

    def _require_identity(self, device_id: str, module_id: str | None) -> None:
        """DeviceNotFound / ModuleNotFound (404) unless the identity is registered."""
        if module_id is None:
            self.core.get_device(device_id)
        else:
            self.core.get_module(device_id, module_id)

    # -- local hub extensions -----------------------------------------------------------

    async def info(self, request: web.Request) -> web.Response:
        return json_response(self._info())

    async def telemetry(self, request: web.Request) -> web.Response:
        device_id, module_id = _device_id(request), _optional_module(request)
        limit = int_param(request.query.get("limit"), "limit", 1, _TELEMETRY_LIMIT_MAX)
        self._require_identity(device_id, module_id)
        messages = self.core.telemetry(device_id, module_id, 100 if limit is None else limit)
        return json_response(
            {
                "deviceId": device_id,
                "moduleId": module_id,
                "count": self.core.telemetry_count(device_id, module_id),
                "messages": [_message_json(message) for message in messages],
            }
        )


def shutting_down() -> HubError:
    return HubError(503, "ServiceUnavailable", 503000, "The hub is shutting down.")


def _message_json(message: dict[str, Any]) -> dict[str, Any]:
    """A buffered D2C message as JSON: the body as text when it is UTF-8, else base64."""
    out = {key: value for key, value in message.items() if key != "body"}
    body: bytes = message.get("body", b"")
    try:
        out["body"], out["bodyEncoding"] = body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        out["body"], out["bodyEncoding"] = base64.b64encode(body).decode("ascii"), "base64"
    return out


# Path ids arrive percent-encoded with quote(id, safe="") (B.3); aiohttp's match_info is
# already decoded, including %2F and %25.
def _device_id(request: web.Request) -> str:
    return request.match_info["device_id"]


def _module_id(request: web.Request) -> str:
    return request.match_info["module_id"]


def _optional_module(request: web.Request) -> str | None:
    return request.match_info.get("module_id")


def _if_match(request: web.Request) -> str | None:
    return request.headers.get("If-Match")
