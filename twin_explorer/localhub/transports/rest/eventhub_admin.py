"""``/_localhub/eventhub``: the built-in endpoint's settings for the app and scripts.

``GET /_localhub/eventhub`` (name, partitions, consumer groups), ``PUT`` and ``DELETE
/_localhub/eventhub/consumergroups/{name}``: IoT Hub manages consumer groups through
Azure Resource Manager; the local hub offers these instead. ServiceConnect is needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.errors import argument_invalid

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guard = Callable[[Right, Handler], Handler]


def routes(core: HubCore, guard: Guard) -> list[web.RouteDef]:
    endpoint = core.eventhub

    def describe() -> dict:
        return {
            "name": endpoint.name,
            "partitionIds": endpoint.partition_ids,
            "consumerGroups": endpoint.consumer_groups(),
            "routes": endpoint.routes,
        }

    async def get(request: web.Request) -> web.Response:
        return web.json_response(describe())

    async def add(request: web.Request) -> web.Response:
        endpoint.add_consumer_group(request.match_info["name"])
        return web.json_response(describe(), status=201)

    async def remove(request: web.Request) -> web.Response:
        endpoint.remove_consumer_group(request.match_info["name"])
        return web.json_response(describe())

    async def set_routes(request: web.Request) -> web.Response:
        names = await request.json()
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise argument_invalid("The body must be a JSON list of route names.")
        endpoint.set_routes(names)
        return web.json_response(describe())

    service = Right.SERVICE_CONNECT
    group = "/_localhub/eventhub/consumergroups/{name}"
    return [
        web.get("/_localhub/eventhub", guard(service, get)),
        web.put(group, guard(service, add)),
        web.delete(group, guard(service, remove)),
        web.put("/_localhub/eventhub/routes", guard(service, set_routes)),
    ]
