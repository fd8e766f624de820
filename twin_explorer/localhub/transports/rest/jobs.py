"""``/jobs/v2``: scheduled twin updates and direct methods (see ``core/jobs.py``).

``PUT /jobs/v2/{id}`` takes a JobRequest and answers 200 with the JobResponse (the Python
SDK accepts only 200); ``GET`` and ``POST .../cancel`` answer the JobResponse too.
``GET /jobs/v2/query?jobType=&jobStatus=`` answers a JSON array of JobResponses, paged
with ``x-ms-max-item-count`` and ``x-ms-continuation`` as ``POST /devices/query`` is.
The runner starts and stops with the application, so jobs run while the hub serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.core.query import BadPageSize, page_size
from twin_explorer.localhub.errors import argument_invalid
from twin_explorer.localhub.transports.rest.wire import json_response, read_json

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore
    from twin_explorer.localhub.transports.rest.api import Handler

_RUNNERS = web.AppKey("hub_runners", list)


def _page_size(header: str | None) -> int:
    """``x-ms-max-item-count`` as the twin query takes it: 100 by default, at most 1000."""
    try:
        return page_size(header)
    except BadPageSize as exc:
        raise argument_invalid(str(exc)) from None


def job_routes(core: HubCore, guard) -> list[web.RouteDef]:
    """The routes, each behind ``guard(right, handler)`` (ServiceConnect, as IoT Hub's
    jobs need)."""
    jobs = core.jobs

    async def job_create(request: web.Request) -> web.Response:
        body = await read_json(request)
        return json_response(jobs.create(request.match_info["job_id"], body))

    async def job_get(request: web.Request) -> web.Response:
        return json_response(jobs.get(request.match_info["job_id"]))

    async def job_cancel(request: web.Request) -> web.Response:
        return json_response(jobs.cancel(request.match_info["job_id"]))

    async def job_query(request: web.Request) -> web.Response:
        size = _page_size(request.headers.get("x-ms-max-item-count"))
        items, token = jobs.query(
            request.query.get("jobType") or None,
            request.query.get("jobStatus") or None,
            size,
            request.headers.get("x-ms-continuation") or None,
        )
        headers = {"x-ms-item-type": "jobResponse"}
        if token:
            headers["x-ms-continuation"] = token
        return json_response(items, headers=headers)

    service = Right.SERVICE_CONNECT
    handlers: list[tuple[str, str, Handler]] = [
        # Before /jobs/v2/{job_id}: the same path shape.
        ("GET", "/jobs/v2/query", job_query),
        ("PUT", "/jobs/v2/{job_id}", job_create),
        ("GET", "/jobs/v2/{job_id}", job_get),
        ("POST", "/jobs/v2/{job_id}/cancel", job_cancel),
    ]
    return [web.route(method, path, guard(service, handler)) for method, path, handler in handlers]


async def device_jobs_response(
    core: HubCore, text: str, page_size: int | None, continuation: str | None
) -> web.Response:
    """``POST /devices/query`` over ``devices.jobs``: the per-device results of jobs, as
    ``x-ms-item-type: deviceJob`` pages."""
    size = _page_size(None if page_size is None else str(page_size))
    items, token = await core.jobs.device_jobs_page(text, size, continuation)
    headers = {"x-ms-item-type": "deviceJob"}
    if token:
        headers["x-ms-continuation"] = token
    return json_response(items, headers=headers)


def run_jobs_with(app: web.Application, core: HubCore) -> None:
    """Run the core's jobs and configurations on the application's loop from startup to
    shutdown."""

    async def start(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        app[_RUNNERS] = [
            loop.create_task(core.jobs.run()),
            loop.create_task(core.configurations.run()),
        ]

    async def stop(app: web.Application) -> None:
        for task in app.get(_RUNNERS, []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
