"""``/_localhub/certificates``: the local hub's CA certificates, for the app and the CLI.

On Azure these are management-plane (ARM) operations on ``Microsoft.Devices/IotHubs/
certificates``: upload, generate a verification code, verify with a proof-of-possession
certificate, delete. The local hub offers the same steps here, with answers in ARM's
CertificateDescription shape; reading needs Registry Read, changing Registry Write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.errors import argument_invalid
from twin_explorer.localhub.transports.rest.wire import (
    json_response,
    no_content,
    read_json,
    read_object,
)

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

PATH = "/_localhub/certificates"
Guard = Callable[..., Callable]


def certificate_routes(core: HubCore, guard: Guard) -> list[web.RouteDef]:
    read, write = Right.REGISTRY_READ, Right.REGISTRY_WRITE
    one = PATH + "/{name}"
    cas = core.certificates

    async def certificate_list(request: web.Request) -> web.Response:
        return json_response({"value": [c.to_json() for c in cas.list()]})

    async def certificate_get(request: web.Request) -> web.Response:
        return json_response(cas.get(request.match_info["name"]).to_json())

    async def certificate_add(request: web.Request) -> web.Response:
        body = read_object(await read_json(request), "request body")
        pem, verified = _pem(body), body.get("isVerified", False)
        if not isinstance(verified, bool):
            raise argument_invalid("isVerified must be true or false.")
        return json_response(cas.add(request.match_info["name"], pem, verified=verified).to_json())

    async def certificate_code(request: web.Request) -> web.Response:
        return json_response(cas.verification_code(request.match_info["name"]).to_json())

    async def certificate_verify(request: web.Request) -> web.Response:
        body = read_object(await read_json(request), "request body")
        return json_response(cas.verify(request.match_info["name"], _pem(body)).to_json())

    async def certificate_delete(request: web.Request) -> web.Response:
        cas.delete(request.match_info["name"])
        return no_content()

    return [
        web.get(PATH, guard(read, certificate_list)),
        web.get(one, guard(read, certificate_get)),
        web.put(one, guard(write, certificate_add)),
        web.post(one + "/generateVerificationCode", guard(write, certificate_code)),
        web.post(one + "/verify", guard(write, certificate_verify)),
        web.delete(one, guard(write, certificate_delete)),
    ]


def _pem(body: dict) -> str:
    pem = body.get("certificate")
    if not isinstance(pem, str) or not pem.strip():
        raise argument_invalid("The body needs the certificate as PEM text in 'certificate'.")
    return pem
