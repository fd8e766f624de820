"""Where the service side of C2D connects and how it proves who it is: the hub's AMQP
host and port, the CA to trust (the local hub's own), and a shared access policy's key or
a Microsoft Entra ID credential. Never printed: ``repr`` leaves the secrets out."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from twin_explorer.connection import strings
from twin_explorer.connection.profiles import ProfileError
from twin_explorer.connection.sas import generate_service_token
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.service.local_hub import local_trust

if TYPE_CHECKING:
    from twin_explorer.service.session import HubSessionState

AMQPS_PORT = 5671
TOKEN_SECONDS = 3600
ENTRA_SCOPE = "https://iothubs.azure.net/.default"
SAS_TOKEN_TYPE = b"servicebus.windows.net:sastoken"


class EndpointError(ValueError):
    """Why the connection cannot send C2D messages, in plain words."""


@dataclass(frozen=True, repr=False)
class C2DEndpoint:
    host: str  # the hub's host name, no port
    port: int = AMQPS_PORT
    ca_cert: str | None = None  # None: the system's trust store
    policy: str = ""
    key: str = ""  # the policy's key (base64); empty with a credential
    credential: Any = None  # an azure-identity credential (Entra ID sign-in)

    def __repr__(self) -> str:
        return f"C2DEndpoint(host={self.host!r}, port={self.port})"

    @classmethod
    def from_connection_string(
        cls, text: str, *, port: int | None = None, ca_cert: str | None = None
    ) -> C2DEndpoint:
        try:
            parsed = strings.parse(text)
        except strings.ConnectionStringError as exc:
            raise EndpointError(str(exc)) from None
        if parsed.kind != "service" or not parsed.shared_access_key:
            raise EndpointError(
                "Sending messages needs a service connection string with a shared access key."
            )
        try:
            base64.b64decode(parsed.shared_access_key, validate=True)
        except binascii.Error:
            raise EndpointError("The connection string's key is not valid base64.") from None
        return cls(
            parsed.host,
            port or AMQPS_PORT,
            ca_cert,
            parsed.shared_access_key_name or "",
            parsed.shared_access_key,
        )

    @property
    def address(self) -> str:
        return f"amqps://{self.host}"

    def auth(self) -> Any:
        """A fresh uamqp CBS authentication for one client (on the I/O loop)."""
        from uamqp import authentication
        from uamqp.authentication import TokenRetryPolicy

        common: dict[str, Any] = {
            "uri": self.address,
            "port": self.port,
            "verify": self.ca_cert,
            "timeout": 10,
            "retry_policy": TokenRetryPolicy(retries=0),
        }
        if self.credential is not None:
            return authentication.JWTTokenAsync(
                audience=ENTRA_SCOPE, get_token=self._bearer, token_type=b"bearer", **common
            )
        return authentication.JWTTokenAsync(
            audience=self.host, get_token=self._sas, token_type=SAS_TOKEN_TYPE, **common
        )

    async def _sas(self) -> Any:
        from azure.core.credentials import AccessToken

        token = generate_service_token(self.host, self.policy, self.key, ttl=TOKEN_SECONDS)
        return AccessToken(token, int(time.time()) + TOKEN_SECONDS)

    async def _bearer(self) -> Any:
        import asyncio

        from azure.core.credentials import AccessToken

        # azure-identity is synchronous (it may call the authority): off the I/O loop.
        found = await asyncio.to_thread(self.credential.get_token, ENTRA_SCOPE)
        return AccessToken(f"Bearer {found.token}", found.expires_on)


def session_endpoint(session: HubSessionState) -> C2DEndpoint | None:
    """The C2D endpoint of the hub the window is on (None when on none); ``EndpointError``
    when that connection cannot send."""
    service = session.service
    if service is None or session.name is None:
        return None
    info = session.local_info
    if session.is_local and info is not None:
        if info.amqp_port is None:
            raise EndpointError("The local hub was started without AMQP: it cannot take messages.")
        return C2DEndpoint.from_connection_string(
            info.service_connection_string, port=info.amqp_port, ca_cert=info.ca_cert
        )
    if service.credential is not None:
        ca_cert, _ = local_trust(service.device_host)
        return C2DEndpoint(service.device_host, ca_cert=ca_cert, credential=service.credential)
    try:
        text = session.profiles.get_connection_string(session.name)
    except (ProfileError, SecretStoreError) as exc:
        raise EndpointError(f"The connection's key could not be read: {exc}.") from None
    endpoint = C2DEndpoint.from_connection_string(text)
    ca_cert, _ = local_trust(endpoint.host)
    return replace(endpoint, ca_cert=ca_cert) if ca_cert else endpoint
