"""``/configurations``: automatic device management (see ``core/configurations.py``).

``PUT /configurations/{id}`` creates (no If-Match; 201) or updates (If-Match; 200),
``GET`` answers the configuration with its system and custom metrics counted now,
``DELETE`` answers 204, ``GET /configurations?top=`` lists (20 by default, at most 100),
``POST /configurations/testQueries`` checks queries, and
``POST /devices/{id}/applyConfigurationContent`` applies content to an edge device (204).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.transports.rest.wire import (
    int_param,
    json_response,
    no_content,
    read_json,
)

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore
    from twin_explorer.localhub.transports.rest.api import Handler


def configuration_routes(core: HubCore, guard) -> list[web.RouteDef]:
    """The routes, each behind ``guard(right, handler)``: reads need RegistryRead,
    writes RegistryWrite (IoT Hub's permissions for configurations)."""
    configs = core.configurations

    async def configuration_put(request: web.Request) -> web.Response:
        body = await read_json(request)
        config, created = configs.put(
            request.match_info["config_id"], body, request.headers.get("If-Match")
        )
        return json_response(await configs.with_metrics(config), status=201 if created else 200)

    async def configuration_get(request: web.Request) -> web.Response:
        config = configs.get(request.match_info["config_id"])
        return json_response(await configs.with_metrics(config))

    async def configuration_delete(request: web.Request) -> web.Response:
        configs.delete(request.match_info["config_id"], request.headers.get("If-Match"))
        return no_content()

    async def configuration_listing(request: web.Request) -> web.Response:
        top = int_param(request.query.get("top"), "top", -(2**31), 2**31 - 1)
        return json_response([await configs.with_metrics(c) for c in configs.list(top)])

    async def configuration_test_queries(request: web.Request) -> web.Response:
        return json_response(configs.test_queries(await read_json(request)))

    async def configuration_apply(request: web.Request) -> web.Response:
        configs.apply_to_edge_device(request.match_info["device_id"], await read_json(request))
        return no_content()

    read, write = Right.REGISTRY_READ, Right.REGISTRY_WRITE
    handlers: list[tuple[str, str, Right, Handler]] = [
        ("POST", "/configurations/testQueries", read, configuration_test_queries),
        ("GET", "/configurations", read, configuration_listing),
        ("PUT", "/configurations/{config_id}", write, configuration_put),
        ("GET", "/configurations/{config_id}", read, configuration_get),
        ("DELETE", "/configurations/{config_id}", write, configuration_delete),
        ("POST", "/devices/{device_id}/applyConfigurationContent", write, configuration_apply),
    ]
    return [web.route(method, path, guard(right, h)) for method, path, right, h in handlers]
