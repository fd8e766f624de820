"""X.509 certificates for device and module identities, made with ``cryptography``.

What IoT Hub wants (reference A.14, D.4): a self-signed certificate is matched by its
SHA-1 or SHA-256 thumbprint, so any subject works, though we put the identity in the CN
as the tutorials do; a CA-signed certificate must have CN = ``deviceId`` or
``deviceId/moduleId``. A test CA proves possession of its key with a certificate whose CN
is the hub's verification code, signed by that key.

Keys are ECDSA P-256: IoT Hub accepts them, every TLS 1.2 stack speaks them, and making
one takes a millisecond (an RSA key takes a noticeable moment on a slow machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLOCK_SKEW = timedelta(minutes=5)  # backdated start: a device whose clock lags still works
PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> str:
        return cert_pem(self.cert)

    @property
    def sha1(self) -> str:
        return thumbprint(self.cert, "sha1")

    @property
    def sha256(self) -> str:
        return thumbprint(self.cert, "sha256")


def thumbprint(cert: x509.Certificate, algorithm: str = "sha1") -> str:
    """Upper-case hex, no colons: how IoT Hub shows and stores thumbprints."""
    digest = hashes.SHA1() if algorithm == "sha1" else hashes.SHA256()
    return cert.fingerprint(digest).hex().upper()


def identity_cn(device_id: str, module_id: str | None = None) -> str:
    return f"{device_id}/{module_id}" if module_id else device_id


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _build(
    subject: str,
    key: PrivateKey,
    issuer: Issued | None,
    days: float,
    *,
    ca: bool,
    now: datetime | None,
) -> x509.Certificate:
    now = now or datetime.now(UTC)
    public = key.public_key()
    signer = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def self_signed(common_name: str, days: float = 365, *, now: datetime | None = None) -> Issued:
    """A device or module certificate signed by its own key."""
    key = new_key()
    return Issued(_build(common_name, key, None, days, ca=False, now=now), key)


def new_ca(common_name: str, days: float = 3650, *, now: datetime | None = None) -> Issued:
    """A root CA for tests and demos."""
    key = new_key()
    return Issued(_build(common_name, key, None, days, ca=True, now=now), key)


def issue(
    issuer: Issued,
    common_name: str,
    days: float = 365,
    *,
    ca: bool = False,
    now: datetime | None = None,
) -> Issued:
    """A leaf (or with ``ca`` an intermediate) signed by ``issuer``; never outlives it."""
    now = now or datetime.now(UTC)
    limit = (issuer.cert.not_valid_after_utc - now).total_seconds() / 86400
    key = new_key()
    return Issued(_build(common_name, key, issuer, min(days, limit), ca=ca, now=now), key)


def proof_of_possession(ca: Issued, verification_code: str) -> Issued:
    """The certificate that verifies ``ca`` on a hub: CN = the hub's code, signed by it."""
    return issue(ca, verification_code, days=2)


def cert_pem(cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()) -> str:
    return "".join(
        c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in (cert, *chain)
    )


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM; encrypted (AES-256) when ``passphrase`` is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_cert(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)


def same_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def load_key(pem: bytes, passphrase: bytes | None = None) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("only EC private keys are kept by Twin Explorer")
    return key


def pfx(
    issued: Issued, passphrase: bytes, chain: Sequence[x509.Certificate] = (), name: str = ""
) -> bytes:
    """PKCS#12 (.pfx) with the key, encrypted with ``passphrase``."""
    if not passphrase:
        raise ValueError("a PFX export needs a passphrase")
    return pkcs12.serialize_key_and_certificates(
        (name or "identity").encode("utf-8"),
        issued.key,
        issued.cert,
        list(chain) or None,
        serialization.BestAvailableEncryption(passphrase),
    )
