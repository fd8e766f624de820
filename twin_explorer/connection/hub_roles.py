"""A client for the local hub's role assignment routes (``/_localhub/roles``).

On Azure, data-plane roles are Azure RBAC assignments (portal, ``az role assignment``),
which this client does not speak: :data:`AZURE_STEPS` says where to do it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from twin_explorer.connection.localhub_admin import LocalHubAdmin

AZURE_STEPS = "https://learn.microsoft.com/azure/iot-hub/authenticate-authorize-azure-ad"


class HubRolesError(Exception):
    """The hub said no (its message) or could not be reached."""


@dataclass(frozen=True)
class RoleAssignment:
    principal_id: str
    principal_name: str
    role: str


@dataclass(frozen=True)
class RoleTable:
    """The assignments and the role names one may assign."""

    assignments: list[RoleAssignment]
    roles: list[str]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RoleTable:
        rows = [
            RoleAssignment(r["principalId"], r["principalName"], r["role"])
            for r in doc.get("value", [])
        ]
        return cls(rows, list(doc.get("roles", [])))


class HubRoles:
    """Role assignments of one local hub; ``ca_file`` is the hub's CA (its TLS trust)."""

    def __init__(self, service_connection_string: str, ca_file: str | None = None) -> None:
        self._admin = LocalHubAdmin(
            service_connection_string, ca_file, "/_localhub/roles", HubRolesError
        )

    async def list(self) -> RoleTable:
        return RoleTable.from_json(await self._admin.call("GET", ""))

    async def assign(self, principal: str, role: str) -> RoleTable:
        """``principal``: an object id, ``test-client`` or ``test-user``."""
        return RoleTable.from_json(await self._admin.call("PUT", _path(principal, role)))

    async def remove(self, principal: str, role: str) -> RoleTable:
        return RoleTable.from_json(await self._admin.call("DELETE", _path(principal, role)))


def _path(principal: str, role: str) -> str:
    return f"/{quote(principal.strip(), safe='')}/{quote(role, safe='')}"
