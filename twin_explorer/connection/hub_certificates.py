"""A client for the local hub's CA certificate routes (``/_localhub/certificates``).

Signed like the service SDK (:mod:`.localhub_admin`; the policy needs Registry
Read/Write). Azure keeps CA certificates in the
management plane (ARM), which this client does not speak: :data:`AZURE_PORTAL_STEPS`
says where to do it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from twin_explorer.connection.localhub_admin import LocalHubAdmin

AZURE_PORTAL_STEPS = (
    "https://learn.microsoft.com/azure/iot-hub/tutorial-x509-test-certs"
    "#register-your-subordinate-ca-certificate-to-your-iot-hub"
)


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
        self._admin = LocalHubAdmin(
            service_connection_string, ca_file, "/_localhub/certificates", HubCertificatesError
        )

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        return await self._admin.call(method, path, body)  # names are quoted

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
