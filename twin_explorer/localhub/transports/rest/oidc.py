"""The local hub's OpenID Connect authority over HTTPS, beside the IoT Hub API.

Paths are Entra ID's, under the hub's tenant id, so ``azure-identity`` credentials with
``authority="https://<host>:<rest port>"`` and ``disable_instance_discovery=True`` use
them unmodified (msal reads the discovery document, then posts to its endpoints):

- ``GET  /<tenant>/v2.0/.well-known/openid-configuration``
- ``GET  /<tenant>/discovery/v2.0/keys`` (JWKS)
- ``POST /<tenant>/oauth2/v2.0/token`` (client credentials, device code, refresh token)
- ``POST /<tenant>/oauth2/v2.0/devicecode``
- ``GET|POST /<tenant>/oauth2/deviceauth``: the page where the test user enters a code
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from twin_explorer.localhub.core.entra import OAuthError
from twin_explorer.localhub.transports.rest.wire import json_response

if TYPE_CHECKING:
    from twin_explorer.localhub.core.entra import EntraAuthority

_TENANT = "/{tenant:[0-9a-fA-F-]{36}}"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FIELD = 16 * 1024


def oidc_routes(authority: EntraAuthority) -> list[web.RouteDef]:
    def tenant(request: web.Request) -> None:
        if request.match_info["tenant"].lower() != authority.tenant_id:
            raise OAuthError(
                "invalid_tenant",
                f"Tenant '{request.match_info['tenant']}' not found; this hub's tenant is "
                f"'{authority.tenant_id}'.",
                90002,
            )

    async def discovery(request: web.Request) -> web.Response:
        tenant(request)
        return json_response(authority.discovery())

    async def keys(request: web.Request) -> web.Response:
        tenant(request)
        return json_response(authority.jwks())

    async def token(request: web.Request) -> web.Response:
        tenant(request)
        return json_response(authority.token(await _form(request)), headers=_NO_STORE)

    async def device_code(request: web.Request) -> web.Response:
        tenant(request)
        return json_response(
            authority.start_device_code(await _form(request)), headers=_NO_STORE
        )

    async def device_page(request: web.Request) -> web.Response:
        tenant(request)
        note = ""
        if request.method == "POST":
            code = (await _form(request)).get("user_code", "")
            if authority.approve_user_code(code):
                return _page(
                    f"<p>Signed in as {html.escape(authority.user_name)}. "
                    "You can close this page.</p>"
                )
            note = "<p><strong>That code is not valid or has expired.</strong></p>"
        return _page(
            f"{note}<form method='post'><label>Code <input name='user_code' "
            "autofocus></label> <button type='submit'>Sign in as "
            f"{html.escape(authority.user_name)}</button></form>"
        )

    async def authorize(request: web.Request) -> web.StreamResponse:
        tenant(request)
        query = {k: v for k, v in request.query.items() if len(v) <= _MAX_FIELD}
        if request.method == "POST":  # the person pressed Sign In on the page below
            query = await _form(request)
        elif not authority.auto_approve:
            code = authority.authorize(query)  # check it now: errors before the page
            authority.forget_auth_code(code)
            hidden = "".join(
                f"<input type='hidden' name='{html.escape(k, quote=True)}' "
                f"value='{html.escape(v, quote=True)}'>"
                for k, v in query.items()
            )
            return _page(
                f"<form method='post'>{hidden}<button type='submit'>Sign in as "
                f"{html.escape(authority.user_name)}</button></form>"
            )
        code = authority.authorize(query)
        answer = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        if query.get("response_mode") == "form_post":  # what azure-identity asks for
            fields = "".join(
                f"<input type='hidden' name='{k}' value='{html.escape(v, quote=True)}'>"
                for k, v in answer.items()
            )
            action = html.escape(query["redirect_uri"], quote=True)
            return _page(
                f"<form method='post' action='{action}'>{fields}<button type='submit'>"
                "Continue</button></form><script>document.forms[0].submit()</script>"
            )
        raise web.HTTPFound(str(URL(query["redirect_uri"]).update_query(answer)))

    return [
        web.get(_TENANT + "/v2.0/.well-known/openid-configuration", _oauth(discovery)),
        web.get(_TENANT + "/oauth2/v2.0/authorize", _oauth(authorize)),
        web.post(_TENANT + "/oauth2/v2.0/authorize", _oauth(authorize)),
        web.get(_TENANT + "/discovery/v2.0/keys", _oauth(keys)),
        web.post(_TENANT + "/oauth2/v2.0/token", _oauth(token)),
        web.post(_TENANT + "/oauth2/v2.0/devicecode", _oauth(device_code)),
        web.get(_TENANT + "/oauth2/deviceauth", _oauth(device_page)),
        web.post(_TENANT + "/oauth2/deviceauth", _oauth(device_page)),
    ]


def _oauth(handler: Any) -> Any:
    """OAuth errors answer as OAuth does (RFC 6749 5.2), not in IoT Hub's envelope."""

    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except OAuthError as error:
            return json_response(error.to_json(), status=error.status, headers=_NO_STORE)

    answering.__name__ = handler.__name__
    return answering


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    out: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str) or len(value) > _MAX_FIELD:
            raise OAuthError("invalid_request", f"The form field {key!r} is not valid.", 900144)
        out[key] = value
    return out


def _page(body: str) -> web.Response:
    return web.Response(
        text="<!doctype html><html><head><title>Local hub sign-in</title></head>"
        f"<body><h1>Local hub sign-in</h1>{body}</body></html>",
        content_type="text/html",
        headers=_NO_STORE,
    )
