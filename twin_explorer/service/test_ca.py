"""The app's test CA: "issue from a test CA" for CA-signed identities on the local hub.

Made once per hub and kept in the keyring (certificate and key), uploaded to the local
hub and verified there with proof of possession, as IoT Hub wants it; then each identity
gets a leaf certificate with CN = ``deviceId[/moduleId]`` signed by it. On Azure IoT Hub
the upload and verification are management-plane steps (the portal), which this app
does not take; :data:`AZURE_PORTAL_STEPS` says where.
"""

from __future__ import annotations

import asyncio
import json

from twin_explorer.connection import certificates as certs
from twin_explorer.connection.hub_certificates import HubCertificates, HubCertificatesError
from twin_explorer.connection.secrets import SecretBackend, SecretStore

CA_NAME = "twin-explorer-test-ca"  # its name on the hub
CA_SUBJECT = "Twin Explorer Test CA"


def _secret_name(hub: str) -> str:
    return f"x509-test-ca:{hub}"


class TestCa:
    """The test CA of one hub (``hub`` as devices name it), in ``secrets``."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, hub: str, secrets: SecretBackend | None = None) -> None:
        self._hub = hub
        self._secrets = secrets if secrets is not None else SecretStore()

    def ensure(self) -> certs.Issued:
        """The CA from the keyring, made and saved on first use (blocking: keyring)."""
        text = self._secrets.get(_secret_name(self._hub))
        if text:
            doc = json.loads(text)
            return certs.Issued(certs.load_cert(doc["cert"]), certs.load_key(doc["key"].encode()))
        ca = certs.new_ca(CA_SUBJECT)
        secret = {"cert": ca.cert_pem, "key": certs.key_pem(ca.key).decode()}
        self._secrets.set(_secret_name(self._hub), json.dumps(secret))
        return ca

    @staticmethod
    async def register(client: HubCertificates, ca: certs.Issued) -> None:
        """Upload ``ca`` to the hub and verify it, unless it is there and verified."""
        held = {item.name: item for item in await client.list()}
        mine = held.get(CA_NAME)
        if mine is not None and mine.thumbprint == ca.sha1 and mine.is_verified:
            return
        if mine is not None and mine.thumbprint != ca.sha1:
            await client.delete(CA_NAME)  # an older test CA of this name
            mine = None
        if mine is None:
            await client.add(CA_NAME, ca.cert_pem)
        code = await client.verification_code(CA_NAME)
        await client.verify(CA_NAME, certs.proof_of_possession(ca, code).cert_pem)

    async def issue(
        self, client: HubCertificates, device_id: str, module_id: str | None, days: int
    ) -> certs.Issued:
        """A leaf for the identity from the test CA, which the hub then trusts."""
        ca = await asyncio.to_thread(self.ensure)
        await self.register(client, ca)
        return certs.issue(ca, certs.identity_cn(device_id, module_id), days)


__all__ = ["CA_NAME", "HubCertificatesError", "TestCa"]
