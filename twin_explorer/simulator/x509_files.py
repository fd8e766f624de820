"""An X.509 identity's certificate and key, handed to the device SDK without a plain key
on disk.

The SDK takes only file paths (``X509(cert_file, key_file, pass_phrase)``) and loads
them into its TLS context when the client is created. So for that moment the key is
written encrypted (PKCS#8, AES-256) with a random passphrase that exists only in this
process's memory, into a private temporary folder, and the folder is removed as soon as
the client exists. Why not a Linux memfd: the app runs on Windows and macOS too, and an
encrypted file gives the same guarantee everywhere: what touches the disk is useless
without the passphrase, and it is gone a moment later.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from twin_explorer.connection import certificates as certs
from twin_explorer.simulator.errors import InvalidSettings


@dataclass(frozen=True)
class X509Identity:
    """A certificate (PEM, with its chain) and its private key, kept in memory."""

    cert_pem: str
    key: certs.PrivateKey = field(repr=False)

    @classmethod
    def from_pem(cls, cert_pem: str, key_pem: bytes, passphrase: bytes | None = None):
        try:
            cert = certs.load_cert(cert_pem)
        except ValueError:
            raise InvalidSettings("The certificate file is not a PEM certificate.") from None
        try:
            key = certs.load_key(key_pem, passphrase)
        except TypeError:
            raise InvalidSettings(
                "The key file is encrypted: give its passphrase."
            ) from None
        except ValueError:
            raise InvalidSettings(
                "The key file is not an EC private key in PEM, or the passphrase is wrong."
            ) from None
        if not certs.same_key(cert, key):
            raise InvalidSettings("The key does not belong to the certificate.")
        return cls(cert_pem, key)


@contextlib.contextmanager
def sdk_files(identity: X509Identity) -> Iterator[tuple[str, str, str]]:
    """(cert_file, key_file, pass_phrase) for ``azure.iot.device.X509``; gone on exit."""
    passphrase = secrets.token_urlsafe(32)
    folder = Path(tempfile.mkdtemp(prefix="twin-explorer-x509-"))  # 0700
    try:
        cert_file, key_file = folder / "cert.pem", folder / "key.pem"
        cert_file.write_text(identity.cert_pem, encoding="ascii")
        key_file.write_bytes(certs.key_pem(identity.key, passphrase.encode()))
        yield str(cert_file), str(key_file), passphrase
    finally:
        shutil.rmtree(folder, ignore_errors=True)
