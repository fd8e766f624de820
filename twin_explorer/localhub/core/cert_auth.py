"""X.509 device and module logins: is this TLS client certificate chain the identity's?

IoT Hub's rules (reference A.14, D.4), for every device transport alike:

- ``selfSigned``: the leaf's SHA-1 or SHA-256 thumbprint equals the identity's primary
  or secondary thumbprint; its CN does not matter.
- ``certificateAuthority``: the leaf's CN is ``deviceId`` (``deviceId/moduleId`` for a
  module) and the chain, through any intermediates the client sent, ends in a CA
  certificate the hub holds and has verified (proof of possession).
- Every certificate used must be valid now (not expired, not before its start).

The TLS layer accepts any certificate; this module decides, and says why it refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from twin_explorer.localhub.core.ca_certificates import common_name, thumbprint
from twin_explorer.localhub.errors import AuthError

X509_TYPES = ("selfSigned", "certificateAuthority")
MAX_CHAIN = 6  # leaf, intermediates and the CA: deeper chains are refused


@dataclass(frozen=True)
class CaTrust:
    """The hub's CA certificates at the time of a login, verified or not."""

    verified: Sequence[x509.Certificate] = ()
    unverified: Sequence[x509.Certificate] = ()


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _check_dates(cert: x509.Certificate, what: str, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise AuthError(
            f"The {what} {_subject(cert)!r} is not valid yet: it starts "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC."
        )
    if now > cert.not_valid_after_utc:
        raise AuthError(
            f"The {what} {_subject(cert)!r} expired "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC."
        )


def _issued_by(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def check_certificate(
    chain: Sequence[x509.Certificate],
    who: str,
    client_id: str,
    auth: Mapping[str, Any],
    trust: CaTrust,
    now: datetime,
) -> None:
    """AuthError, saying why, unless ``chain`` (leaf first) proves the identity.

    ``who`` names the identity for messages ("module 'd/m'"), ``client_id`` is
    ``d`` or ``d/m``, ``auth`` its stored ``authentication`` object.
    """
    kind = auth.get("type")
    if not chain:
        raise AuthError(
            f"The {who} uses X.509 ({kind}) authentication but presented no client certificate."
        )
    leaf = chain[0]
    _check_dates(leaf, "client certificate", now)
    if kind == "selfSigned":
        prints = auth.get("x509Thumbprint") or {}
        registered = {
            str(value).replace(":", "").upper()
            for value in (prints.get("primaryThumbprint"), prints.get("secondaryThumbprint"))
            if value
        }
        sha1 = thumbprint(leaf, "sha1")
        if sha1 in registered or thumbprint(leaf, "sha256") in registered:
            return
        raise AuthError(
            f"The client certificate {_subject(leaf)!r} (SHA-1 thumbprint {sha1}) matches "
            f"neither thumbprint registered for the {who}."
        )
    if kind != "certificateAuthority":
        raise AuthError(f"The {who} does not use X.509 authentication.")
    cn = common_name(leaf)
    if cn != client_id:
        raise AuthError(
            f"The client certificate's CN is {cn!r}; a CA-signed certificate for the {who} "
            f"must have CN={client_id}."
        )
    current = leaf
    intermediates = list(chain[1:MAX_CHAIN])
    for _ in range(MAX_CHAIN):
        ca = _issued_by(current, trust.verified)
        if ca is not None:
            _check_dates(ca, "CA certificate", now)
            return
        held = _issued_by(current, trust.unverified)
        if held is not None:
            raise AuthError(
                f"The client certificate chains to the CA {_subject(held)!r}, which this hub "
                "holds but has not verified (proof of possession)."
            )
        step = _issued_by(current, intermediates)
        if step is None or step is current:
            break
        _check_dates(step, "intermediate certificate", now)
        intermediates.remove(step)
        current = step
    raise AuthError(
        f"The client certificate chain of the {who} does not end in a CA certificate this "
        f"hub holds (last issuer {current.issuer.rfc4514_string()!r})."
    )
