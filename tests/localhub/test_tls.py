"""Local hub certificates: generated once, renewed only as needed, and accepted by real clients."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import shutil
import ssl
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from twin_explorer.localhub.runtime.tls import (
    RENEW_BEFORE,
    SERVER_VALIDITY,
    CertPaths,
    client_context,
    ensure_certificates,
    server_context,
)

TIMEOUT = 10
EXTRA_HOST = "hub.example.test"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return ensure_certificates(tmp_path_factory.mktemp("hubdata"), [EXTRA_HOST])


def _contents(paths: CertPaths) -> dict[str, bytes]:
    return {
        name: getattr(paths, name).read_bytes()
        for name in ("ca_cert", "ca_key", "server_cert", "server_key")
    }


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(path: Path) -> set[object]:
    san = _load(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | set(san.get_values_for_type(x509.IPAddress))


def _sdk_context(paths: CertPaths) -> ssl.SSLContext:
    """The context azure-iot-device builds (reference A.1), plus OpenSSL strict checks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(protocol=ssl.PROTOCOL_TLSv1_2)
    ctx.load_verify_locations(cadata=paths.ca_cert.read_text())
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    # What Python 3.13's default context enforces: RFC 5280 profile checks.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


# --- generation and reuse ---------------------------------------------------------------


def test_first_start_generates_and_later_starts_reuse(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    before = _contents(first)
    again = ensure_certificates(tmp_path)
    assert again == first
    assert first.ca_cert == tmp_path / "tls" / "ca.pem"
    assert _contents(again) == before
    assert sorted(p.name for p in first.ca_cert.parent.iterdir()) == [
        "ca.key",
        "ca.pem",
        "server.key",
        "server.pem",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_key_files_are_private(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path)
    assert paths.ca_key.stat().st_mode & 0o777 == 0o600
    assert paths.server_key.stat().st_mode & 0o777 == 0o600
    assert paths.ca_cert.parent.stat().st_mode & 0o077 == 0


def test_new_extra_host_reissues_server_cert_but_keeps_ca(tmp_path: Path) -> None:
    before = _contents(ensure_certificates(tmp_path))
    paths = ensure_certificates(tmp_path, ["Hub.Example.Test", "192.0.2.7", "[2001:db8::1]"])
    after = _contents(paths)
    assert after["ca_cert"] == before["ca_cert"]
    assert after["ca_key"] == before["ca_key"]
    assert after["server_cert"] != before["server_cert"]
    assert after["server_key"] != before["server_key"]
    assert _sans(paths.server_cert) == {
        "localhost",
        "hub.example.test",
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("2001:db8::1"),
    }
    # Hosts already covered, or dropped from the request, need no new certificate.
    ensure_certificates(tmp_path, ["hub.example.test"])
    ensure_certificates(tmp_path)
    assert _contents(paths) == after


def test_missing_server_cert_is_reissued_by_same_ca(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path)
    ca_before = paths.ca_cert.read_bytes()
    paths.server_cert.unlink()
    ensure_certificates(tmp_path)
    assert paths.ca_cert.read_bytes() == ca_before
    _load(paths.server_cert).verify_directly_issued_by(_load(paths.ca_cert))


def test_server_cert_near_expiry_is_reissued(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    paths = ensure_certificates(tmp_path, now=now)
    before = _contents(paths)
    ensure_certificates(tmp_path, now=now + SERVER_VALIDITY - RENEW_BEFORE - timedelta(days=1))
    assert _contents(paths) == before
    later = now + SERVER_VALIDITY - RENEW_BEFORE + timedelta(days=1)
    ensure_certificates(tmp_path, now=later)
    after = _contents(paths)
    assert after["ca_cert"] == before["ca_cert"]
    assert after["server_cert"] != before["server_cert"]
    assert _load(paths.server_cert).not_valid_after_utc > later + RENEW_BEFORE


def test_server_cert_from_another_ca_is_replaced(tmp_path: Path) -> None:
    mine = ensure_certificates(tmp_path / "mine")
    other = ensure_certificates(tmp_path / "other")
    shutil.copyfile(other.server_cert, mine.server_cert)
    shutil.copyfile(other.server_key, mine.server_key)
    ensure_certificates(tmp_path / "mine")
    _load(mine.server_cert).verify_directly_issued_by(_load(mine.ca_cert))


def test_lost_ca_key_means_new_ca_and_server_cert(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path)
    before = _contents(paths)
    paths.ca_key.unlink()
    ensure_certificates(tmp_path)
    after = _contents(paths)
    assert after["ca_cert"] != before["ca_cert"]
    assert after["server_cert"] != before["server_cert"]
    _load(paths.server_cert).verify_directly_issued_by(_load(paths.ca_cert))


def test_invalid_extra_host_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        ensure_certificates(tmp_path, ["bad host"])


def test_certificate_profile(certs: CertPaths) -> None:
    ca = _load(certs.ca_cert)
    server = _load(certs.server_cert)
    ca_cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert ca_cn == "Twin Explorer Local Hub CA"
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ca_years = (ca.not_valid_after_utc - ca.not_valid_before_utc).days / 365
    assert 9.9 < ca_years < 10.1

    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = server.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    server_days = (server.not_valid_after_utc - server.not_valid_before_utc).days
    assert 700 < server_days < 760
    server.verify_directly_issued_by(ca)


def test_contexts_speak_tls12_at_least(certs: CertPaths) -> None:
    assert server_context(certs).minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(certs).minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_context(certs).verify_mode == ssl.CERT_NONE
    assert server_context(certs, client_auth=True).verify_mode == ssl.CERT_OPTIONAL


# --- real handshakes ----------------------------------------------------------------------


@asynccontextmanager
async def tls_echo_server(ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """An asyncio TLS server that echoes one line per connection; yields its port."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readline())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _echo_over_tls(port: int, ctx: ssl.SSLContext, hostname: str) -> tuple[bytes, str]:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=hostname),
        TIMEOUT,
    )
    try:
        version = writer.get_extra_info("ssl_object").version()
        writer.write(b"ping\n")
        return await asyncio.wait_for(reader.readline(), TIMEOUT), version
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1", EXTRA_HOST])
@pytest.mark.parametrize("client", ["client_context", "sdk_context"])
async def test_handshake_verifies_hostname(certs: CertPaths, hostname: str, client: str) -> None:
    ctx = client_context(certs) if client == "client_context" else _sdk_context(certs)
    async with tls_echo_server(server_context(certs)) as port:
        line, version = await _echo_over_tls(port, ctx, hostname)
    assert line == b"ping\n"
    if client == "sdk_context":
        assert version == "TLSv1.2"


async def test_handshake_rejects_a_name_not_in_the_certificate(certs: CertPaths) -> None:
    async with tls_echo_server(server_context(certs)) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            await _echo_over_tls(port, client_context(certs), "elsewhere.example.test")


async def test_client_without_our_ca_fails_verification(certs: CertPaths) -> None:
    async with tls_echo_server(server_context(certs)) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"self-signed|local issuer"):
            await _echo_over_tls(port, ssl.create_default_context(), "localhost")


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def https_server(ctx: ssl.SSLContext) -> Iterator[int]:
    """A tiny HTTPS server in a thread, for blocking clients such as requests."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_requests_verifies_the_chain_with_ca_pem(certs: CertPaths) -> None:
    with https_server(server_context(certs)) as port, requests.Session() as session:
        session.trust_env = False  # no proxy or CA bundle from the environment
        url = f"https://127.0.0.1:{port}/"
        response = session.get(url, verify=str(certs.ca_cert), timeout=TIMEOUT)
        assert response.json() == {"ok": True}
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, verify=True, timeout=TIMEOUT)
