"""Calls to the local hub's own admin routes (``/_localhub/...``), signed like the
service SDK: a service SAS for the hub from a service connection string whose policy has
the rights the route needs. Used for what IoT Hub keeps in Azure Resource Manager (CA
certificates, role assignments), which the local hub offers over REST instead."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from twin_explorer.connection import strings
from twin_explorer.connection.sas import generate_service_token

TIMEOUT = aiohttp.ClientTimeout(total=30)


class LocalHubAdmin:
    """One admin route family (``base``, e.g. ``/_localhub/roles``) of one local hub;
    ``ca_file`` is the hub's CA (its TLS trust). Failures raise ``error`` with the hub's
    message (which names no secret) or why it could not be reached."""

    def __init__(
        self,
        service_connection_string: str,
        ca_file: str | None,
        base: str,
        error: type[Exception],
    ) -> None:
        cs = strings.parse(service_connection_string)
        if cs.kind != "service" or not cs.shared_access_key_name or not cs.shared_access_key:
            raise error("A service connection string (with a policy) is needed.")
        self._cs = cs
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._base = base
        self._error = error

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer (None for 204); ``path`` (quoted by the caller) follows base."""
        cs = self._cs
        assert cs.shared_access_key_name and cs.shared_access_key
        token = generate_service_token(
            cs.host_name, cs.shared_access_key_name, cs.shared_access_key
        )
        url = f"https://{cs.host_name}{self._base}{path}"
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.request(
                    method, url, json=body, headers={"Authorization": token}, ssl=self._ssl
                ) as response,
            ):
                doc = await response.json(content_type=None) if response.status != 204 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._error(f"Could not reach the hub at {cs.host_name}: {exc}") from None
        if response.status >= 400:
            message = (doc or {}).get("Message", f"HTTP {response.status}")
            raise self._error(message.split(";", 1)[-1])
        return doc
