"""Shared access signature tokens: generate them as the SDKs do, parse and verify them.

Generation is byte-for-byte what the official SDKs send, so the local hub and real IoT Hub
see the same tokens:
- service (azure-iot-hub, reference B.2): ``sr=quote_plus(host)``, ``sig`` quoted with the
  default ``safe="/"``, always ``skn``.
- device/module (azure-iot-device, reference A.3): ``sr=quote(uri, safe="")``, ``sig`` quoted
  with ``safe=""``, ``skn`` only for policy-signed tokens.

Verification is deliberately lenient about *encoding* (other SDKs and the docs encode
differently) and strict about the *signature* and the expiry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote

from twin_explorer.connection.hosts import HostError, split_host_port

PREFIX = "SharedAccessSignature"
DEFAULT_TTL = 3600
_REQUIRED = ("sr", "sig", "se")
_KNOWN = (*_REQUIRED, "skn")
_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")


class SasTokenError(ValueError):
    """A token that cannot be built, read or accepted. Messages never hold key or signature."""


class ExpiredToken(SasTokenError):
    """The token's ``se`` is not in the future."""


class BadSignature(SasTokenError):
    """The signature matches none of the keys."""


@dataclass(frozen=True, repr=False)
class SasToken:
    """A parsed ``SharedAccessSignature sr=..&sig=..&se=..[&skn=..]`` token."""

    resource: str  # unquoted sr, e.g. "hub.example/devices/d1"
    raw_resource: str  # sr exactly as received; the SDKs sign this form
    signature: str  # unquoted base64 signature
    expiry: int  # se, seconds since the epoch
    key_name: str | None  # skn: the policy name, None for identity-key tokens

    def __repr__(self) -> str:
        return (
            f"SasToken(resource={self.resource!r}, expiry={self.expiry}, "
            f"key_name={self.key_name!r}, signature='****')"
        )


def _decode_key(key_b64: str) -> bytes:
    try:
        key = base64.b64decode(key_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SasTokenError("the key is not valid base64") from None
    if not key:
        raise SasTokenError("the key is empty")
    return key


def _sign(key: bytes, encoded_resource: str, expiry: int) -> bytes:
    message = f"{encoded_resource}\n{expiry}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def _expiry(ttl: int, now: float | None) -> int:
    return int((time.time() if now is None else now) + ttl)


def generate_service_token(
    host: str, policy: str, key_b64: str, ttl: int = DEFAULT_TTL, now: float | None = None
) -> str:
    """The Authorization header value azure-iot-hub sends for ``host`` (may hold ":port")."""
    sr = quote_plus(host)
    se = _expiry(ttl, now)
    sig = quote(base64.b64encode(_sign(_decode_key(key_b64), sr, se)).decode("ascii"))
    return f"{PREFIX} sr={sr}&sig={sig}&se={se}&skn={policy}"


def generate_device_token(
    resource_uri: str,
    key_b64: str,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
    policy: str | None = None,
) -> str:
    """The MQTT password azure-iot-device sends for ``host/devices/d[/modules/m]``."""
    sr = quote(resource_uri, safe="")
    se = _expiry(ttl, now)
    sig = quote(base64.b64encode(_sign(_decode_key(key_b64), sr, se)).decode("ascii"), safe="")
    token = f"{PREFIX} sr={sr}&sig={sig}&se={se}"
    return f"{token}&skn={policy}" if policy else token


def device_resource_uri(host: str, device_id: str, module_id: str | None = None) -> str:
    """``<HostName>/devices/<d>[/modules/<m>]``, the resource a device or module signs (A.3)."""
    uri = f"{host}/devices/{device_id}"
    return f"{uri}/modules/{module_id}" if module_id else uri


def parse_token(token: str) -> SasToken:
    """Read a token string; raise SasTokenError with a plain message if it is malformed."""
    text = token.strip()
    head, sep, body = text.partition(" ")
    if head != PREFIX or not sep:
        raise SasTokenError("not a SharedAccessSignature")
    fields: dict[str, str] = {}
    for part in body.strip().split("&"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq:
            raise SasTokenError("a field of the token is not of the form name=value")
        if name not in _KNOWN:
            shown = f"'{name}'" if len(name) <= 8 and name.isalnum() else "a field"
            raise SasTokenError(f"the token has an unknown field {shown}")
        if name in fields:
            raise SasTokenError(f"the token has {name} twice")
        fields[name] = value.strip()
    for name in _REQUIRED:
        if not fields.get(name):
            raise SasTokenError(f"missing {name}")
    se = fields["se"]
    if not (se.isascii() and se.isdigit()):
        raise SasTokenError("se is not a whole number of seconds")
    skn = fields.get("skn")
    return SasToken(
        resource=unquote(fields["sr"]),
        raw_resource=fields["sr"],
        signature=unquote(fields["sig"]),
        expiry=int(se),
        key_name=unquote(skn) if skn else None,
    )


def _signed_forms(raw_resource: str) -> list[str]:
    """Every encoding of the resource a client may have signed (A.3 verification recipe)."""
    plain = unquote(raw_resource)
    forms = [raw_resource, quote(plain, safe=""), quote_plus(plain), plain]
    forms += [_PERCENT_HEX.sub(lambda m: m.group(0).lower(), f) for f in forms]
    return list(dict.fromkeys(forms))


def verify_token(
    token: SasToken, keys: Sequence[str], *, now: float | None = None, text_keys: bool = False
) -> None:
    """Accept ``token`` if it is unexpired and signed with any of ``keys`` (base64).

    Raises ExpiredToken or BadSignature. Keys that are not valid base64 are skipped, so one
    damaged secondary key does not lock out the primary. ``text_keys``: also accept the
    key's text itself as the HMAC key, as Service Bus and Event Hubs clients sign.
    """
    current = time.time() if now is None else now
    if token.expiry <= current:
        raise ExpiredToken("the token has expired")
    try:
        presented = base64.b64decode(token.signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadSignature("the signature is not valid base64") from None
    matched = False
    for key_b64 in keys:
        try:
            key = _decode_key(key_b64)
        except SasTokenError:
            continue
        for secret in (key, key_b64.encode()) if text_keys else (key,):
            for form in _signed_forms(token.raw_resource):
                # compare_digest on every candidate: timing must not reveal near misses.
                matched |= hmac.compare_digest(_sign(secret, form, token.expiry), presented)
    if not matched:
        raise BadSignature("the signature does not match the key")


def _split_resource(resource: str) -> tuple[str, int | None, list[str]] | None:
    text = resource.strip()
    scheme, sep, rest = text.partition("://")
    if sep and scheme.isalpha():
        text = rest
    hostport, _, path = text.partition("/")
    try:
        host, port = split_host_port(hostport)
    except HostError:
        return None
    return host.lower(), port, [seg for seg in path.split("/") if seg]


def resource_matches(token_resource: str, wanted: str) -> bool:
    """Does a token for ``token_resource`` cover ``wanted``? (both unquoted, reference D.3).

    Path-segment prefix: "h/devices/d1" covers "h/devices/d1/modules/m1" but not
    "h/devices/d10". The host compares case-insensitively, and a ":port" on only one side
    is ignored because the service SDK signs it when HostName has one (B.1).
    """
    have, want = _split_resource(token_resource), _split_resource(wanted)
    if have is None or want is None:
        return False
    have_host, have_port, have_path = have
    want_host, want_port, want_path = want
    if have_host != want_host:
        return False
    if have_port is not None and want_port is not None and have_port != want_port:
        return False
    return want_path[: len(have_path)] == have_path


def generate_key() -> str:
    """A new symmetric key: 32 random bytes in base64, the size IoT Hub generates."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")
