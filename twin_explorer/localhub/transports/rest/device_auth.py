"""Who sends a device HTTPS request: the one place the device routes authenticate.

IoT Hub takes the same credentials over HTTPS as over MQTT: a SAS token in the
``Authorization`` header, signed with the identity's own key (``sr`` exactly the device,
or the module) or with a policy key holding DeviceConnect (``skn``), checked by
``HubCore.authenticate_device`` like an MQTT CONNECT's password. A token of another
identity, a wrong key or an expired token is 401 (401002).

X.509: a client certificate arrives in the TLS handshake instead of a header; without
a header, the TLS connection's peer chain goes to the same core check as an MQTT
CONNECT's (thumbprint, or verified CA and CN), refusals 401 like a bad token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from twin_explorer.localhub.errors import AuthError
from twin_explorer.twin.identity import identity_path

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.hub import HubCore


def device_identity(core: HubCore, request: web.Request) -> Identity:
    """The device or module the request's path names, once its credentials prove it is
    that identity; AuthError (401) otherwise."""
    client_id = identity_path(request.match_info["device_id"], request.match_info.get("module_id"))
    token = request.headers.get("Authorization")
    if token and token.strip():
        return core.authenticate_device(client_id, None, token)
    transport = request.transport
    chain = transport.get_extra_info("peer_certificates") if transport is not None else None
    if not chain:
        raise AuthError(
            "The request has no Authorization header (a SAS token) and no client certificate."
        )
    return core.authenticate_device(client_id, None, None, chain)
