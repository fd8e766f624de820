"""Who may call a service operation: a shared access signature (a policy's right) or an
Entra ID access token (a data-plane role), the two ways IoT Hub authorizes service APIs.

``Authorization: SharedAccessSignature ...`` goes to the policy check of :mod:`.auth`,
unless the hub runs with local authentication disabled (IoT Hub's ``disableLocalAuth``:
"SAS tokens with IoT hub scoped SAS keys cannot be used for authentication").
``Authorization: Bearer <jwt>`` is validated by :class:`.entra.EntraAuthority` and then
authorized by the principal's role assignments against the operation's permission.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import jwt

from twin_explorer.localhub.core import auth
from twin_explorer.localhub.core.auth import Policy, Right
from twin_explorer.localhub.core.entra import EntraAuthority, Principal, unauthorized_principal
from twin_explorer.localhub.core.roles import ROLES, Permission, grants
from twin_explorer.localhub.errors import AuthError
from twin_explorer.localhub.store.entra_files import RoleAssignments

BEARER = "bearer "
LOCAL_AUTH_DISABLED = (
    "Shared access keys are disabled on this hub (local authentication is off): "
    "sign in with Microsoft Entra ID."
)


class ServiceAccess:
    def __init__(
        self,
        policies: Callable[[], Mapping[str, Policy]],
        hostname: str,
        entra: EntraAuthority,
        roles: RoleAssignments,
        seconds: Callable[[], float],
    ) -> None:
        self._policies = policies
        self._hostname = hostname
        self.entra = entra
        self.roles = roles
        self._seconds = seconds
        self.local_auth_disabled = False

    def authorize(
        self,
        header: str | None,
        rights: Right | Iterable[Right],
        permission: Permission,
        method: str,
        path: str,
    ) -> str:
        """Who the request is (a policy name, or a principal's name); a HubError (401)
        when it may not do this."""
        text = (header or "").strip()
        if text[: len(BEARER)].lower() == BEARER:
            return self.authorize_token(text[len(BEARER) :], permission, method, path).name
        if self.local_auth_disabled and text:
            raise AuthError(LOCAL_AUTH_DISABLED)
        return auth.authorize_service(
            self._policies(), self._hostname, header, rights, self._seconds()
        )

    def authorize_token(
        self, token: str, permission: Permission, method: str, path: str
    ) -> Principal:
        """The one Entra ID check for every transport: REST's ``Bearer`` header and AMQP
        CBS ``jwt`` put-tokens. The token must be valid (signature, audience, issuer,
        expiry, not-before) and its principal hold a role allowing ``permission``;
        otherwise a 401 HubError (``method`` and ``path`` name the operation in it)."""
        principal = self.entra.verify_access_token(token)
        self.require_role(principal, permission, method, path)
        return principal

    def token_expiry(self, token: str) -> int:
        """When a token :meth:`authorize_token` accepted runs out (its ``exp``, seconds
        since the epoch): AMQP detaches the links it authorised then."""
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
        return int(claims["exp"])

    def require_role(
        self, principal: Principal, permission: Permission, method: str, path: str
    ) -> None:
        """IoT Hub's 401 IotHubUnauthorized unless an assigned role allows ``permission``."""
        assigned = self.roles.roles_of(principal.object_id)
        if not any(role in ROLES and grants(role, permission) for role in assigned):
            raise unauthorized_principal(principal, method, path)
