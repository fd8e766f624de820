"""X.509 certificates the app makes for device and module identities, keys in the keyring.

"Generate a self-signed certificate for me": a key and certificate (CN = ``deviceId`` or
``deviceId/moduleId``, as IoT Hub requires of CA-signed ones and the tutorials use for
all), the thumbprints registered with the identity. The private key and certificate are
kept in the OS keyring under the hub and identity, never in a file unless the user
exports them (PEM, or PFX with a passphrase).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509

from twin_explorer.connection import certificates as certs
from twin_explorer.connection import strings
from twin_explorer.connection.secrets import SecretBackend, SecretStore
from twin_explorer.twin.identity import identity_path

EXPIRY_WARNING = timedelta(days=30)
DEFAULT_DAYS = 365


def x509_connection_string(host: str, device_id: str, module_id: str | None) -> str:
    """``HostName=..;DeviceId=..[;ModuleId=..];x509=true``: names the identity, no secret."""
    cs = strings.ConnectionString(
        host_name=host, device_id=device_id, module_id=module_id, x509=True
    )
    return strings.format(cs)


def secret_name(hub: str, device_id: str, module_id: str | None) -> str:
    """The keyring entry of an identity's certificate and key (not a profile name)."""
    return f"x509:{hub}/{identity_path(device_id, module_id)}"


@dataclass(frozen=True)
class CertificateFacts:
    """What the identity's details show about its certificate."""

    subject: str
    issuer: str
    sha1: str
    sha256: str
    not_after: datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateFacts:
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            sha1=certs.thumbprint(cert, "sha1"),
            sha256=certs.thumbprint(cert, "sha256"),
            not_after=cert.not_valid_after_utc,
        )

    def expiry_text(self, now: datetime | None = None) -> str:
        """'expires 2027-01-05' or a warning when it runs out soon or ran out."""
        now = now or datetime.now(UTC)
        day = f"{self.not_after:%Y-%m-%d}"
        if self.not_after <= now:
            return f"EXPIRED on {day}: devices using it can no longer connect"
        if self.not_after - now <= EXPIRY_WARNING:
            left = (self.not_after - now).days
            return f"expires {day}, in {left} day{'s' if left != 1 else ''}: renew it soon"
        return f"expires {day}"

    def expiring(self, now: datetime | None = None) -> bool:
        return self.not_after - (now or datetime.now(UTC)) <= EXPIRY_WARNING


class IdentityCertificates:
    """Certificates and keys of identities, in ``secrets`` (the OS keyring by default)."""

    def __init__(self, secrets: SecretBackend | None = None) -> None:
        self._secrets = secrets if secrets is not None else SecretStore()

    def generate(self, days: int = DEFAULT_DAYS, *, device_id: str, module_id: str | None):
        """A new self-signed certificate for the identity (not saved yet)."""
        return certs.self_signed(certs.identity_cn(device_id, module_id), days)

    def save(self, hub: str, device_id: str, module_id: str | None, issued: certs.Issued) -> None:
        """Keep it in the keyring; SecretStoreError (plain words) when that fails."""
        secret = json.dumps({"cert": issued.cert_pem, "key": certs.key_pem(issued.key).decode()})
        self._secrets.set(secret_name(hub, device_id, module_id), secret)

    def load(self, hub: str, device_id: str, module_id: str | None) -> certs.Issued | None:
        text = self._secrets.get(secret_name(hub, device_id, module_id))
        if not text:
            return None
        doc = json.loads(text)
        return certs.Issued(certs.load_cert(doc["cert"]), certs.load_key(doc["key"].encode()))

    def delete(self, hub: str, device_id: str, module_id: str | None) -> None:
        self._secrets.delete(secret_name(hub, device_id, module_id))

    @staticmethod
    def export_pem(issued: certs.Issued, passphrase: str) -> tuple[str, bytes]:
        """(certificate PEM, key PEM encrypted with ``passphrase``)."""
        if not passphrase:
            raise ValueError("Choose a passphrase: the exported key is encrypted with it.")
        return issued.cert_pem, certs.key_pem(issued.key, passphrase.encode())

    @staticmethod
    def export_pfx(issued: certs.Issued, passphrase: str, name: str) -> bytes:
        if not passphrase:
            raise ValueError("Choose a passphrase: the PFX file is encrypted with it.")
        return certs.pfx(issued, passphrase.encode(), name=name)
