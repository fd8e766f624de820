"""``POST /devices``: the REST shape of a bulk registry operation (see
:mod:`twin_explorer.localhub.core.bulk_registry` for what it does).

The answer is a BulkRegistryOperationResult ``{"isSuccessful", "errors", "warnings"}``:
200 when every entry succeeded, 400 when some failed (REST API "Bulk Registry - Update
Registry"). A failed batch also carries ``iothub-errorcode: BulkRegistryOperationFailure``
(400013, "An error was encountered processing bulk registry operations",
azure-iot-sdk-csharp ErrorCode.cs); the body is what clients read. A request that is no
batch at all (not a JSON array, empty, over 100 entries) gets the usual error envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.errors import argument_invalid
from twin_explorer.localhub.transports.rest.wire import json_response, read_json

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore


async def bulk_registry_response(core: HubCore, request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, list):
        raise argument_invalid(
            "The request body must be a JSON array of ExportImportDevice objects."
        )
    errors = core.bulk_registry(body)
    result = {
        "isSuccessful": not errors,
        "errors": [error.to_json() for error in errors],
        "warnings": [],
    }
    if not errors:
        return json_response(result)
    return json_response(
        result, status=400, headers={"iothub-errorcode": "BulkRegistryOperationFailure"}
    )
