"""Who may do what: shared access policies, service SAS checks and device logins.

Service side (B.2, B.9): a ``SharedAccessSignature`` scoped to the hub host, naming a
policy in ``skn``, signed with one of its keys, unexpired, and the policy holding the
right the operation needs. Real IoT Hub answers a missing right with 401 too.

Device side (A.2, A.3, D.3, A.14): an MQTT CONNECT's client id names the identity; an
X.509 identity sends no password and proves itself with its TLS client certificate
(cert_auth); otherwise the password is a SAS token for
``<host>/devices/<d>[/modules/<m>]`` signed with the identity's own key (no ``skn``), or
a DeviceConnect policy's key (``skn``). The host part of a device token is not checked:
clients sign whatever HostName they were given.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from twin_explorer.connection.sas import (
    BadSignature,
    ExpiredToken,
    SasToken,
    SasTokenError,
    parse_token,
    resource_matches,
    verify_token,
)
from twin_explorer.localhub.core.cert_auth import X509_TYPES, CaTrust, check_certificate
from twin_explorer.localhub.errors import AuthError
from twin_explorer.twin.identity import identity_path


class Right(enum.Enum):
    """Shared access policy permissions; values are IoT Hub's names."""

    REGISTRY_READ = "RegistryRead"
    REGISTRY_WRITE = "RegistryWrite"
    SERVICE_CONNECT = "ServiceConnect"
    DEVICE_CONNECT = "DeviceConnect"

    @property
    def label(self) -> str:
        """'Registry Write': how the portal and the docs spell it."""
        return {
            "RegistryRead": "Registry Read",
            "RegistryWrite": "Registry Write",
            "ServiceConnect": "Service Connect",
            "DeviceConnect": "Device Connect",
        }[self.value]


# D.3 / B.9: the five policies every hub starts with.
DEFAULT_POLICIES: dict[str, frozenset[Right]] = {
    "iothubowner": frozenset(Right),
    "service": frozenset({Right.SERVICE_CONNECT}),
    "device": frozenset({Right.DEVICE_CONNECT}),
    "registryRead": frozenset({Right.REGISTRY_READ}),
    "registryReadWrite": frozenset({Right.REGISTRY_READ, Right.REGISTRY_WRITE}),
}


@dataclass(frozen=True, repr=False)
class Policy:
    name: str
    primary_key: str
    secondary_key: str
    rights: frozenset[Right]

    @property
    def keys(self) -> tuple[str, str]:
        return self.primary_key, self.secondary_key

    def __repr__(self) -> str:  # keys stay out of logs
        rights = ", ".join(sorted(r.value for r in self.rights))
        return f"Policy({self.name!r}, rights=[{rights}])"

    def rights_text(self) -> str:
        return ",".join(r.value for r in Right if r in self.rights)

    @staticmethod
    def parse_rights(text: str) -> frozenset[Right]:
        return frozenset(Right(part) for part in text.split(",") if part)


@dataclass(frozen=True)
class Identity:
    """A device or module that passed MQTT CONNECT authentication."""

    device_id: str
    module_id: str | None
    policy: str | None = None  # the policy that signed the token, None for identity keys

    @property
    def client_id(self) -> str:
        return identity_path(self.device_id, self.module_id)


def _parse(header: str, who: str) -> SasToken:
    text = header.strip()
    try:
        return parse_token(text)
    except SasTokenError as exc:
        raise AuthError(f"The {who} is not a valid SharedAccessSignature: {exc}.") from None


def _verify(token: SasToken, keys: Iterable[str], signer: str, now: float) -> None:
    # Event Hubs clients (the built-in endpoint, sb://) sign with the key's text.
    text_keys = token.resource.lower().startswith("sb://")
    try:
        verify_token(token, [k for k in keys if k], now=now, text_keys=text_keys)
    except ExpiredToken:
        raise AuthError(f"The token expired (se={token.expiry}); ask for a new one.") from None
    except BadSignature:
        raise AuthError(f"The token is signed with the wrong key for {signer}.") from None


def authorize_service(
    policies: Mapping[str, Policy],
    hostname: str,
    header: str | None,
    rights: Right | Iterable[Right],
    now: float,
) -> str:
    """The policy name a REST request's Authorization grants, or AuthError (401).

    ``rights`` is the right the operation needs, or several of which any one suffices
    (the query endpoint accepts ServiceConnect or RegistryRead, B.9).
    """
    wanted = (rights,) if isinstance(rights, Right) else tuple(rights)
    if not header or not header.strip():
        raise AuthError("The request has no Authorization header.")
    token = _parse(header, "Authorization header")
    policy = _hub_policy(policies, hostname, token, token.resource, now)
    if not any(right in policy.rights for right in wanted):
        needed = " or ".join(right.label for right in wanted)
        raise AuthError(f"Policy {policy.name!r} lacks the {needed} permission.")
    return policy.name


def _hub_policy(
    policies: Mapping[str, Policy], hostname: str, token: SasToken, scope: str, now: float
) -> Policy:
    """The policy a hub-wide token (``scope``: its resource, for this hub) is signed with."""
    if not resource_matches(scope, hostname) or not resource_matches(hostname, scope):
        raise AuthError(f"The token is for {token.resource!r}, not for this hub ({hostname!r}).")
    if token.key_name is None:
        raise AuthError("The token names no shared access policy (skn).")
    policy = policies.get(token.key_name)
    if policy is None:
        raise AuthError(f"The hub has no shared access policy {token.key_name!r}.")
    _verify(token, policy.keys, f"policy {policy.name!r}", now)
    return policy


def split_client_id(client_id: str) -> tuple[str, str | None]:
    """'d' or 'd/m' (A.2); ids cannot contain '/', so the first one splits them."""
    device_id, sep, module_id = client_id.partition("/")
    if not device_id or (sep and not module_id) or "/" in module_id:
        raise AuthError(
            f"The client id {client_id!r} is not '<deviceId>' or '<deviceId>/<moduleId>'."
        )
    return device_id, module_id or None


def check_username(username: str | None, client_id: str) -> None:
    """Loose A.2 check: ``<host>/<clientId>/?<query>`` must name the client id."""
    if username is None:
        return
    prefix = username.split("/?", 1)[0].rstrip("/")
    if prefix != client_id and not prefix.endswith("/" + client_id):
        raise AuthError(f"The MQTT username does not name the client id {client_id!r}.")


def _who(identity: Identity) -> str:
    if identity.module_id:
        return f"module {identity.client_id!r}"
    return f"device {identity.device_id!r}"


def check_device_credentials(
    password: str | None,
    certificates: Sequence[x509.Certificate],
    identity: Identity,
    auth: Mapping[str, Any],
    policies: Mapping[str, Policy],
    trust: CaTrust,
    now: float,
) -> Identity:
    """Every device transport's login check: a SAS token (``password``), or without one
    the TLS client certificate chain (leaf first) for an X.509 identity (A.14)."""
    if password is not None:
        return check_device_password(password, identity, auth, policies, now)
    who = _who(identity)
    if auth.get("type") in X509_TYPES:
        moment = datetime.fromtimestamp(now, UTC)
        check_certificate(certificates, who, identity.client_id, auth, trust, moment)
        return identity
    if certificates:
        raise AuthError(
            f"The {who} uses {auth.get('type')!r} authentication, not X.509: it presented a "
            "client certificate and no SAS token."
        )
    return check_device_password(password, identity, auth, policies, now)


def check_device_password(
    password: str | None,
    identity: Identity,
    auth: Mapping[str, Any],
    policies: Mapping[str, Policy],
    now: float,
) -> Identity:
    """Verify the SAS password of an MQTT CONNECT for ``identity`` (A.3, D.3)."""
    who = _who(identity)
    if password is None:
        raise AuthError(f"The {who} sent no password (SAS token).")
    token = _parse(password, "password")
    host = token.resource.split("/", 1)[0]
    wanted = f"{host}/devices/{identity.device_id}"
    if identity.module_id:
        wanted += f"/modules/{identity.module_id}"
    if token.key_name is None:
        # Identity key: the token must be for exactly this identity (a device's token
        # does not open its modules).
        if not (
            resource_matches(token.resource, wanted) and resource_matches(wanted, token.resource)
        ):
            raise AuthError(f"The token is for {token.resource!r}, not for the {who}.")
        if auth.get("type") != "sas":
            raise AuthError(f"The {who} has no symmetric keys; it uses {auth.get('type')!r}.")
        keys = auth.get("symmetricKey") or {}
        _verify(token, (keys.get("primaryKey"), keys.get("secondaryKey")), f"the {who}", now)
        return identity
    policy = policies.get(token.key_name)
    if policy is None:
        raise AuthError(f"The hub has no shared access policy {token.key_name!r}.")
    if not resource_matches(token.resource, wanted):
        raise AuthError(f"The token is for {token.resource!r}, which does not cover the {who}.")
    _verify(token, policy.keys, f"policy {policy.name!r}", now)
    if Right.DEVICE_CONNECT not in policy.rights:
        raise AuthError(f"Policy {policy.name!r} lacks the Device Connect permission.")
    return Identity(identity.device_id, identity.module_id, policy.name)


@dataclass(frozen=True)
class TokenGrant:
    """What a SAS token presented on a connection (AMQP CBS put-token or SASL PLAIN)
    allows until ``expiry`` (seconds since the epoch): speaking as one device or module
    (``identity``), or a policy's ``rights`` over the whole hub."""

    expiry: int
    identity: Identity | None = None
    policy: str | None = None
    rights: frozenset[Right] = frozenset()


def resource_identity(resource: str) -> tuple[str, str | None] | None:
    """(device, module) a token's ``sr`` names (``<host>/devices/<d>[/modules/<m>]``, with
    or without a scheme), None for a hub-wide resource."""
    text = resource.strip()
    scheme, sep, rest = text.partition("://")
    if sep and scheme.isalpha():
        text = rest
    parts = [p for p in text.split("/") if p][1:]
    if len(parts) >= 2 and parts[0].lower() == "devices":
        if len(parts) >= 4 and parts[2].lower() == "modules":
            return parts[1], parts[3]
        return parts[1], None
    return None


def check_hub_token(
    policies: Mapping[str, Policy], hostname: str, text: str, now: float
) -> TokenGrant:
    """A hub-wide token (``sr`` the hub host, as ``https://``, ``sb://`` or bare; ``skn`` a
    policy): the policy's rights, or AuthError."""
    token = _parse(text, "token")
    host = token.resource.partition("://")[2] or token.resource
    policy = _hub_policy(policies, hostname, token, host.split("/", 1)[0], now)
    return TokenGrant(token.expiry, None, policy.name, policy.rights)


def token_expiry(text: str) -> int:
    """``se`` of a token that was verified already."""
    return _parse(text, "token").expiry
