"""A client for the local hub's CA certificate routes (``/_localhub/certificates``).

Signed like the service SDK (a service SAS for the hub, from a service connection
string whose policy has Registry Read/Write). Azure keeps CA certificates in the
management plane (ARM), which this client does not speak: :data:`AZURE_PORTAL_STEPS`
says where to do it there.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from twin_explorer.connection import strings
from twin_explorer.connection.sas import generate_service_token

AZURE_PORTAL_STEPS = (
    "https://learn.microsoft.com/azure/iot-hub/tutorial-x509-test-certs"
    "#register-your-subordinate-ca-certificate-to-your-iot-hub"
)
TIMEOUT = aiohttp.ClientTimeout(total=30)


class HubCertificatesError(Exception):
    """The hub said no (its message, which names no secret) or could not be reached."""


@dataclass(frozen=True)
class CaInfo:
    name: str
    subject: str
    thumbprint: str
    expiry: str
    is_verified: bool
    verification_code: str | None
    pem: str = ""

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CaInfo:
        props = doc.get("properties") or {}
        return cls(
            name=doc.get("name", ""),
            subject=props.get("subject", ""),
            thumbprint=props.get("thumbprint", ""),
            expiry=props.get("expiry", ""),
            is_verified=bool(props.get("isVerified")),
            verification_code=props.get("verificationCode"),
            pem=props.get("certificate", ""),
        )


class HubCertificates:
    """CA certificates of one local hub; ``ca_file`` is the hub's CA (its TLS trust)."""

    def __init__(self, service_connection_string: str, ca_file: str | None = None) -> None:
        cs = strings.parse(service_connection_string)
        if cs.kind != "service" or not cs.shared_access_key_name or not cs.shared_access_key:
            raise HubCertificatesError("A service connection string (with a policy) is needed.")
        self._cs = cs
        self._ssl = ssl.create_default_context(cafile=ca_file)

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        cs = self._cs
        assert cs.shared_access_key_name and cs.shared_access_key
        token = generate_service_token(
            cs.host_name, cs.shared_access_key_name, cs.shared_access_key
        )
        url = f"https://{cs.host_name}/_localhub/certificates{path}"  # names are quoted
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.request(
                    method, url, json=body, headers={"Authorization": token}, ssl=self._ssl
                ) as response,
            ):
                doc = await response.json(content_type=None) if response.status != 204 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise HubCertificatesError(
                f"Could not reach the hub at {cs.host_name}: {exc}"
            ) from None
        if response.status >= 400:
            message = (doc or {}).get("Message", f"HTTP {response.status}")
            raise HubCertificatesError(message.split(";", 1)[-1])
        return doc

    async def list(self) -> list[CaInfo]:
        doc = await self._call("GET", "")
        return [CaInfo.from_json(item) for item in doc.get("value", [])]

    async def add(self, name: str, pem: str, *, verified: bool = False) -> CaInfo:
        body = {"certificate": pem, "isVerified": verified}
        return CaInfo.from_json(await self._call("PUT", f"/{quote(name, safe='')}", body))

    async def verification_code(self, name: str) -> str:
        info = CaInfo.from_json(
            await self._call("POST", f"/{quote(name, safe='')}/generateVerificationCode")
        )
        assert info.verification_code
        return info.verification_code

    async def verify(self, name: str, proof_pem: str) -> CaInfo:
        return CaInfo.from_json(
            await self._call("POST", f"/{quote(name, safe='')}/verify", {"certificate": proof_pem})
        )

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/{quote(name, safe='')}")
