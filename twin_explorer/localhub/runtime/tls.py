"""The local hub's certificates: a CA made on first start and a server certificate it signs.

Both hub servers (MQTT on 8883, REST on 443 or any port) present the same server
certificate. Clients of a local-hub profile trust only our CA: the device SDK takes its PEM
text as ``server_verification_cert`` and the service SDK a file via ``REQUESTS_CA_BUNDLE``
or ``connection.verify`` (protocol reference A.1, B.1).

Keys are RSA 2048: the real IoT Hub serves RSA certificates, so any ``cipher=`` list a
user copied for Azure (``ECDHE-RSA-...``) works against the local hub too, and every TLS
1.2 stack accepts RSA. The certificates carry what OpenSSL 3 (and Python 3.13's
``VERIFY_X509_STRICT``) demand: a critical basicConstraints and keyUsage on the CA, and
subject/authority key identifiers linking the server certificate to it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

from twin_explorer.localhub.transports.tls_stream import accept_any_certificate

logger = logging.getLogger(__name__)

CA_COMMON_NAME = "Twin Explorer Local Hub CA"
SERVER_COMMON_NAME = "Twin Explorer Local Hub"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")

CA_VALIDITY = timedelta(days=3650)
# Under the 825 days some platforms cap TLS server certificates at.
SERVER_VALIDITY = timedelta(days=730)
# Renew this long before expiry, so a hub started just before never serves a dying cert.
RENEW_BEFORE = timedelta(days=30)
# Backdate notBefore a little: a client whose clock runs behind still accepts a fresh cert.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CertPaths:
    """Where the hub's PEM files live (all inside ``<data_dir>/tls``)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, tls_dir: Path) -> CertPaths:
        return cls(
            ca_cert=tls_dir / "ca.pem",
            ca_key=tls_dir / "ca.key",
            server_cert=tls_dir / "server.pem",
            server_key=tls_dir / "server.key",
        )


def ensure_certificates(
    data_dir: Path, extra_hosts: Sequence[str] = (), *, now: datetime | None = None
) -> CertPaths:
    """Create the CA and server certificate on first start; reuse or renew them later.

    The CA is kept for as long as it is usable, since clients pin it. Only the server
    certificate is reissued: when it is missing, unreadable, not signed by the CA, expired
    or near expiry, or when its SANs lack one of ``extra_hosts`` (host names or IP
    literals). A reissued certificate keeps the SANs of the one it replaces, so a host once
    served stays valid; delete ``server.pem`` to start over. Only an unusable CA (missing,
    mismatched key, expiring) is replaced, and then every client must trust the new one.

    ``now`` exists for tests; it defaults to the current time.
    """
    now = now or datetime.now(UTC)
    tls_dir = Path(data_dir) / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = CertPaths.in_dir(tls_dir)
    wanted = {_general_name(host) for host in (*DEFAULT_HOSTS, *extra_hosts)}

    ca = _load_ca(paths, now)
    current = None
    if ca is None:
        logger.info("creating local hub CA in %s", tls_dir)
        ca = _create_ca(now)
        _write_pem(paths.ca_key, _key_pem(ca[1]))
        _write_pem(paths.ca_cert, ca[0].public_bytes(serialization.Encoding.PEM))
    else:
        current = _load_server_cert(paths, ca[0], now)

    if current is not None:
        have = _san_names(current)
        if wanted <= have:
            return paths
        wanted |= have
    logger.info("issuing local hub server certificate for %s", sorted(map(_describe, wanted)))
    cert, key = _issue_server_cert(ca, wanted, now)
    _write_pem(paths.server_key, _key_pem(key))
    _write_pem(paths.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return paths


def server_context(paths: CertPaths, *, client_auth: bool = False) -> ssl.SSLContext:
    """TLS server context for the MQTT and REST servers: TLS 1.2 or newer, our chain.

    TLS 1.2 must stay enabled: the device SDK pins ``PROTOCOL_TLSv1_2`` (reference A.1).

    ``client_auth=True`` requests a client certificate (``CERT_OPTIONAL``) for X.509
    device authentication (A.14). Limitation of the stdlib ``ssl`` module: a presented
    certificate must chain to a trust anchor loaded into this context, otherwise the
    handshake fails outright. Callers load each registered self-signed device certificate
    or CA with ``ctx.load_verify_locations(cadata=pem)``, then authorize by thumbprint or
    CN themselves; accepting arbitrary certificates needs another TLS stack.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(paths.server_cert, paths.server_key)
    if client_auth:
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def hub_tls_context(paths: CertPaths) -> SSL.Context:
    """The TLS context every hub listener serves with (transports.tls_stream).

    TLS 1.2 or newer (the device SDK pins 1.2, A.1), our server chain, and a client
    certificate requested but not required, any certificate accepted by the handshake:
    the core decides whether it identifies a device (A.14). No session resumption, so
    every connection presents its certificate chain afresh.
    """
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate_chain_file(str(paths.server_cert))
    ctx.use_privatekey_file(str(paths.server_key))
    ctx.check_privatekey()
    ctx.set_verify(SSL.VERIFY_PEER, accept_any_certificate)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_options(SSL.OP_NO_TICKET)
    return ctx


def client_context(paths: CertPaths) -> ssl.SSLContext:
    """TLS client context that trusts only the local hub CA, hostname checked."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(paths.ca_cert))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


_CA = tuple[x509.Certificate, rsa.RSAPrivateKey]


def _create_ca(now: datetime) -> _CA:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_server_cert(
    ca: _CA, names: Iterable[x509.GeneralName], now: datetime
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    ca_cert, ca_key = ca
    key = _new_key()
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    # Never outlive the CA: a leaf valid past its issuer fails verification anyway.
    not_after = min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_COMMON_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sorted(names, key=_describe)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _load_ca(paths: CertPaths, now: datetime) -> _CA | None:
    """The stored CA and its key, or None when either is missing or unusable."""
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        if paths.ca_cert.exists() or paths.ca_key.exists():
            logger.warning("local hub CA unusable, making a new one: %s", exc)
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or not _same_key(cert, key):
        logger.warning("local hub CA key does not match its certificate, making a new CA")
        return None
    if not _valid_at(cert, now):
        logger.warning("local hub CA expired or expiring, making a new CA")
        return None
    return cert, key


def _load_server_cert(
    paths: CertPaths, ca_cert: x509.Certificate, now: datetime
) -> x509.Certificate | None:
    """The stored server certificate if it is still good to serve, else None."""
    try:
        cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
    except FileNotFoundError:
        return None
    except Exception as exc:  # bad PEM, wrong issuer, bad signature: all mean reissue
        logger.info("local hub server certificate unusable (%s), reissuing", exc)
        return None
    if not _same_key(cert, key) or not _valid_at(cert, now):
        return None
    return cert


def _valid_at(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now < cert.not_valid_after_utc - RENEW_BEFORE


def _same_key(cert: x509.Certificate, key: object) -> bool:
    public = getattr(key, "public_key", None)
    if public is None:
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == public().public_bytes(*spki)


def _san_names(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names: set[x509.GeneralName] = set()
    for name in san:
        if isinstance(name, x509.DNSName):
            names.add(x509.DNSName(name.value.lower()))
        elif isinstance(name, x509.IPAddress):
            names.add(name)
    return names


def _general_name(host: str) -> x509.GeneralName:
    """A SAN entry for a host: IP literals (IPv6 with or without brackets) or DNS names."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.rstrip(".").lower()
    if not name or any(ch.isspace() or ch in "/:@" for ch in name):
        raise ValueError(f"not a host name or IP address: {host!r}")
    # SANs hold A-labels; the idna codec turns "bücher.test" into "xn--bcher-kva.test".
    return x509.DNSName(name if name.isascii() else name.encode("idna").decode("ascii"))


def _describe(name: x509.GeneralName) -> str:
    return str(name.value)


def _key_usage(**flags: bool) -> x509.KeyUsage:
    fields = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{field: flags.get(field, False) for field in fields})


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    # Unencrypted on purpose: the hub starts unattended; the file mode protects it.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pem(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves half a PEM behind.

    mkstemp creates the file 0600, so a key is never readable by others, not even for a
    moment; certificates stay 0600 too, as everything in the data folder (``datadir``).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
