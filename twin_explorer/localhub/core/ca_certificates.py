"""CA certificates the hub holds, and their proof of possession (IoT Hub's "verify").

As on IoT Hub: upload a CA certificate (unverified), ask for a verification code, then
present a certificate whose subject CN is that code, signed by the CA's private key; the
CA is then verified and devices whose certificates chain to it may connect (A.14).

Kept as one JSON document in the store's meta table: a hub holds a handful of CAs.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from twin_explorer.connection.certificates import thumbprint
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.store.sqlite import Store

META_KEY = "ca_certificates"
# IoT Hub: "name may only contain alphanumeric characters, '-', '.' and '_'", 1-64 long.
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_CERTIFICATES = 25  # IoT Hub allows 25 CA certificates per hub


def common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def load_pem(pem: str, what: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii", "replace"))
    except ValueError:
        try:  # a bare base64 DER body, as the portal takes .cer files too
            return x509.load_der_x509_certificate(base64.b64decode(pem, validate=False))
        except (ValueError, TypeError):
            raise bad_request(f"The {what} is not a PEM or base64 X.509 certificate.") from None


def bad_request(message: str) -> HubError:
    return HubError(400, "ArgumentInvalid", 400004, message)


def not_found(name: str) -> HubError:
    return HubError(404, "CertificateNotFound", 404007, f"No CA certificate named {name!r}.")


@dataclass(frozen=True)
class CaCertificate:
    """One CA the hub holds: IoT Hub's CertificateDescription, flattened."""

    name: str
    pem: str
    subject: str
    thumbprint: str
    expiry: str
    is_verified: bool
    verification_code: str | None
    created: str
    updated: str
    etag: str

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode("ascii"))

    def to_json(self) -> dict[str, Any]:
        """ARM's CertificateDescription shape (what az and the portal show)."""
        properties: dict[str, Any] = {
            "subject": self.subject,
            "expiry": self.expiry,
            "thumbprint": self.thumbprint,
            "isVerified": self.is_verified,
            "created": self.created,
            "updated": self.updated,
            "certificate": self.pem,
        }
        if self.verification_code:
            properties["verificationCode"] = self.verification_code
        return {"name": self.name, "etag": self.etag, "properties": properties}


class CaCertificates:
    """The hub's CA certificates in its store; every method one short transaction."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    def _load(self) -> dict[str, CaCertificate]:
        text = self._store.get_meta(META_KEY)
        items = json.loads(text) if text else []
        return {item["name"]: CaCertificate(**item) for item in items}

    def _save(self, certs: dict[str, CaCertificate]) -> None:
        with self._store.transaction():
            self._store.set_meta(META_KEY, json.dumps([asdict(c) for c in certs.values()]))

    def list(self) -> list[CaCertificate]:
        return sorted(self._load().values(), key=lambda c: c.name)

    def get(self, name: str) -> CaCertificate:
        cert = self._load().get(name)
        if cert is None:
            raise not_found(name)
        return cert

    def trust(self) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
        """(verified, unverified) CA certificates, for a login check: one read."""
        held = list(self._load().values())
        verified = [c.certificate for c in held if c.is_verified]
        return verified, [c.certificate for c in held if not c.is_verified]

    def add(self, name: str, pem: str, *, verified: bool = False) -> CaCertificate:
        """Upload a CA certificate; ``verified`` as IoT Hub's "set verified on upload"."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise bad_request(
                f"The certificate name {name!r} must be 1 to 64 letters, digits, '-', '.' or '_'."
            )
        cert = load_pem(pem)
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is not None and not constraints.ca:
            raise bad_request(
                "The certificate is not a CA certificate (basicConstraints CA:FALSE)."
            )
        certs = self._load()
        if name in certs:
            raise HubError(409, "CertificateAlreadyExists", 409011, f"{name!r} exists already.")
        if len(certs) >= MAX_CERTIFICATES:
            raise HubError(
                403, "IotHubQuotaExceeded", 403002, f"A hub holds at most {MAX_CERTIFICATES} CAs."
            )
        stamp = self._stamp()
        entry = CaCertificate(
            name=name,
            pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            subject=cert.subject.rfc4514_string(),
            thumbprint=thumbprint(cert),
            expiry=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            is_verified=verified,
            verification_code=None,
            created=stamp,
            updated=stamp,
            etag=secrets.token_hex(8),
        )
        certs[name] = entry
        self._save(certs)
        return entry

    def verification_code(self, name: str) -> CaCertificate:
        """A fresh code to put as CN in the proof-of-possession certificate."""
        certs = self._load()
        cert = certs.get(name) or self._missing(name)
        code = secrets.token_hex(24).upper()
        certs[name] = replace(cert, verification_code=code, updated=self._stamp())
        self._save(certs)
        return certs[name]

    def verify(self, name: str, proof_pem: str) -> CaCertificate:
        """Mark the CA verified when ``proof_pem`` has CN = its code and its signature."""
        certs = self._load()
        cert = certs.get(name) or self._missing(name)
        if not cert.verification_code:
            raise bad_request(f"Generate a verification code for {name!r} first.")
        proof = load_pem(proof_pem, "verification certificate")
        if common_name(proof) != cert.verification_code:
            raise bad_request(
                "The verification certificate's subject CN is not the verification code "
                f"issued for {name!r}."
            )
        try:
            proof.verify_directly_issued_by(cert.certificate)
        except (ValueError, TypeError, InvalidSignature):
            raise bad_request(
                f"The verification certificate is not signed by the private key of {name!r}."
            ) from None
        certs[name] = replace(cert, is_verified=True, verification_code=None, updated=self._stamp())
        self._save(certs)
        return certs[name]

    def delete(self, name: str) -> None:
        certs = self._load()
        if certs.pop(name, None) is None:
            raise not_found(name)
        self._save(certs)

    @staticmethod
    def _missing(name: str) -> CaCertificate:
        raise not_found(name)

    def _stamp(self) -> str:
        return self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
