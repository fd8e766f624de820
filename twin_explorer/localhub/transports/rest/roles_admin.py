"""``/_localhub/roles``: the local hub's data-plane role assignments for the app.

``GET /_localhub/roles`` lists the assignments and the roles there are; ``PUT`` and
``DELETE /_localhub/roles/{principal}/{role}`` assign and remove one (principal: an
object id, ``test-client`` or ``test-user``; role: a built-in role's name, quoted). On
IoT Hub this is Azure RBAC (``az role assignment``); the local hub offers these instead,
as ``twin-explorer hub roles`` does from a shell. Registry rights are needed, and with
Entra ID the hub-settings data actions (only Data Contributor may change them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.core.auth import Right
from twin_explorer.localhub.core.entra import resolve_principal
from twin_explorer.localhub.core.roles import ROLES, UnknownRole, role_name
from twin_explorer.localhub.errors import HubError, argument_invalid

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guard = Callable[[Right, Handler], Handler]
PATH = "/_localhub/roles"


def routes(core: HubCore, guard: Guard) -> list[web.RouteDef]:
    assignments = core.access.roles

    def describe() -> dict:
        rows = [
            {"principalId": r.principal_id, "principalName": r.principal_name, "role": r.role}
            for r in assignments.all()
        ]
        return {"value": rows, "roles": list(ROLES)}

    def target(request: web.Request) -> tuple[str, str, str]:
        """(object id, display name, role) the path names; 400 saying why otherwise."""
        try:
            role = role_name(request.match_info["role"])
            principal_id, name = resolve_principal(core.store, request.match_info["principal"])
        except (UnknownRole, ValueError) as exc:
            raise argument_invalid(str(exc)) from None
        return principal_id, name, role

    async def role_assignment_list(request: web.Request) -> web.Response:
        return web.json_response(describe())

    async def role_assignment_add(request: web.Request) -> web.Response:
        principal_id, name, role = target(request)
        assignments.assign(principal_id, name, role)
        return web.json_response(describe())

    async def role_assignment_remove(request: web.Request) -> web.Response:
        principal_id, name, role = target(request)
        if not assignments.remove(principal_id, role):
            raise HubError(404, "NotFound", 404001, f"{name} does not have the role {role}.")
        return web.json_response(describe())

    one = PATH + "/{principal}/{role}"
    return [
        web.get(PATH, guard(Right.REGISTRY_READ, role_assignment_list)),
        web.put(one, guard(Right.REGISTRY_WRITE, role_assignment_add)),
        web.delete(one, guard(Right.REGISTRY_WRITE, role_assignment_remove)),
    ]
