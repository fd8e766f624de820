"""IoT Hub connection strings: parse, validate, print (reference D.2).

Parsing follows the SDKs (split on ';', then on the first '=' so base64 padding survives,
duplicate and unknown names rejected) but is kinder about pasted text: surrounding
whitespace, empty parts and a trailing ';' are fine. Error messages are plain words and
never repeat a value, so they can be shown and logged as they are.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Literal

from twin_explorer.connection.hosts import HostError, parse_host_port
from twin_explorer.connection.sas import SasTokenError, parse_token

HOST_NAME = "HostName"
SHARED_ACCESS_KEY_NAME = "SharedAccessKeyName"
SHARED_ACCESS_KEY = "SharedAccessKey"
SHARED_ACCESS_SIGNATURE = "SharedAccessSignature"
DEVICE_ID = "DeviceId"
MODULE_ID = "ModuleId"
GATEWAY_HOST_NAME = "GatewayHostName"
X509 = "x509"

# Canonical order: gives exactly the forms in the D.2 table.
NAMES = (
    HOST_NAME,
    DEVICE_ID,
    MODULE_ID,
    SHARED_ACCESS_KEY_NAME,
    SHARED_ACCESS_KEY,
    SHARED_ACCESS_SIGNATURE,
    GATEWAY_HOST_NAME,
    X509,
)
_BY_FOLDED = {name.casefold(): name for name in NAMES}
_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,19}")
# Identity ids are up to 128 printable ASCII characters (D.1); '/' would break the SAS uri.
_ID = re.compile(r"[\x21-\x2e\x30-\x7e]{1,128}")
MASK = "****"

Kind = Literal["service", "device", "module"]


class ConnectionStringError(ValueError):
    """A connection string that cannot be used. The message never contains a secret."""


@dataclass(frozen=True, repr=False)
class ConnectionString:
    host_name: str  # as written; may carry ":port" for service strings (B.1)
    shared_access_key_name: str | None = None
    shared_access_key: str | None = None
    shared_access_signature: str | None = None
    device_id: str | None = None
    module_id: str | None = None
    gateway_host_name: str | None = None
    x509: bool = False

    @property
    def kind(self) -> Kind:
        if self.module_id:
            return "module"
        return "device" if self.device_id else "service"

    @property
    def host(self) -> str:
        """HostName without the port (an IPv6 literal keeps its brackets)."""
        return parse_host_port(self.host_name)[0]

    @property
    def port(self) -> int | None:
        return parse_host_port(self.host_name)[1]

    def parts(self) -> list[tuple[str, str]]:
        """(name, value) pairs in canonical order, secrets included."""
        values = {
            HOST_NAME: self.host_name,
            DEVICE_ID: self.device_id,
            MODULE_ID: self.module_id,
            SHARED_ACCESS_KEY_NAME: self.shared_access_key_name,
            SHARED_ACCESS_KEY: self.shared_access_key,
            SHARED_ACCESS_SIGNATURE: self.shared_access_signature,
            GATEWAY_HOST_NAME: self.gateway_host_name,
            X509: "true" if self.x509 else None,
        }
        return [(name, values[name]) for name in NAMES if values[name] is not None]

    def masked(self) -> str:
        """The canonical string with key and signature replaced by ****: safe to show."""
        secret = (SHARED_ACCESS_KEY, SHARED_ACCESS_SIGNATURE)
        return ";".join(f"{n}={MASK if n in secret else v}" for n, v in self.parts())

    def __str__(self) -> str:
        return format(self)

    def __repr__(self) -> str:
        return f"ConnectionString({self.masked()!r})"


def format(cs: ConnectionString) -> str:  # shadows the builtin on purpose: a public name
    """The canonical connection string, e.g. HostName=h;DeviceId=d;SharedAccessKey=k."""
    return ";".join(f"{name}={value}" for name, value in cs.parts())


def _split(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    parts = [p.strip() for p in text.strip().split(";")]
    for index, part in enumerate((p for p in parts if p), start=1):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq:
            raise ConnectionStringError(f"part {index} of the connection string has no '='")
        if name not in NAMES:
            raise ConnectionStringError(_unknown(name, index))
        if name in values:
            raise ConnectionStringError(f"{name} appears more than once")
        value = value.strip()
        if not value:
            raise ConnectionStringError(f"{name} is empty")
        values[name] = value
    if not values:
        raise ConnectionStringError("the connection string is empty")
    return values


def _unknown(name: str, index: int) -> str:
    # Echo the name only if it is short and word-like: a pasted key must never come back.
    if not _SAFE_NAME.fullmatch(name):
        return f"part {index} of the connection string is not a known part"
    proper = _BY_FOLDED.get(name.casefold())
    if proper:
        return f"unknown part '{name}' (names are case-sensitive: did you mean '{proper}'?)"
    return f"unknown part '{name}'"


def _check_key(value: str) -> None:
    try:
        key = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ConnectionStringError(f"{SHARED_ACCESS_KEY} is not valid base64") from None
    if not key:
        raise ConnectionStringError(f"{SHARED_ACCESS_KEY} is empty")


def _check_host(name: str, value: str, *, port_allowed: bool) -> None:
    try:
        _, port = parse_host_port(value)
    except HostError as exc:
        raise ConnectionStringError(f"{name}: {exc}") from None
    if port is not None and not port_allowed:
        # The device SDK dials a fixed port (A.1); a port here would silently be wrong.
        raise ConnectionStringError(
            f"a device or module connection string cannot have a port in {name}"
        )


def _check_id(name: str, value: str | None) -> None:
    if value is not None and not _ID.fullmatch(value):
        raise ConnectionStringError(
            f"{name} must be 1 to 128 printable ASCII characters without spaces or '/'"
        )


def _x509(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise ConnectionStringError(f"{X509} must be 'true' or 'false'")
    return value.lower() == "true"


def parse(text: str) -> ConnectionString:
    """Parse and validate a service, device or module connection string."""
    if not isinstance(text, str):
        raise ConnectionStringError("the connection string must be text")
    values = _split(text)
    host_name = values.get(HOST_NAME)
    if host_name is None:
        raise ConnectionStringError("the connection string has no HostName")
    cs = ConnectionString(
        host_name=host_name,
        shared_access_key_name=values.get(SHARED_ACCESS_KEY_NAME),
        shared_access_key=values.get(SHARED_ACCESS_KEY),
        shared_access_signature=values.get(SHARED_ACCESS_SIGNATURE),
        device_id=values.get(DEVICE_ID),
        module_id=values.get(MODULE_ID),
        gateway_host_name=values.get(GATEWAY_HOST_NAME),
        x509=_x509(values.get(X509)),
    )
    _validate(cs)
    return cs


def _validate(cs: ConnectionString) -> None:
    if cs.module_id and not cs.device_id:
        raise ConnectionStringError("a module connection string needs DeviceId")
    _check_id(DEVICE_ID, cs.device_id)
    _check_id(MODULE_ID, cs.module_id)
    service = cs.kind == "service"
    _check_host(HOST_NAME, cs.host_name, port_allowed=service)
    if cs.gateway_host_name is not None:
        _check_host(GATEWAY_HOST_NAME, cs.gateway_host_name, port_allowed=False)
    if cs.shared_access_key is not None:
        _check_key(cs.shared_access_key)
    if cs.shared_access_key is not None and cs.shared_access_signature is not None:
        raise ConnectionStringError("use either SharedAccessKey or SharedAccessSignature, not both")
    if cs.shared_access_signature is not None:
        try:
            parse_token(cs.shared_access_signature)
        except SasTokenError as exc:
            raise ConnectionStringError(f"SharedAccessSignature: {exc}") from None
    if service:
        _validate_service(cs)
    else:
        _validate_identity(cs)


def _validate_service(cs: ConnectionString) -> None:
    if cs.x509:
        raise ConnectionStringError("x509 is only for device and module connection strings")
    if cs.shared_access_signature is not None:
        return  # the token names its policy in skn
    if cs.shared_access_key_name is None and cs.shared_access_key is None:
        raise ConnectionStringError(
            "the connection string has neither DeviceId nor SharedAccessKeyName and SharedAccessKey"
        )
    if cs.shared_access_key_name is None:
        raise ConnectionStringError("a service connection string needs SharedAccessKeyName")
    if cs.shared_access_key is None:
        raise ConnectionStringError("a service connection string needs SharedAccessKey")


def _validate_identity(cs: ConnectionString) -> None:
    credentials = [
        cs.shared_access_key is not None,
        cs.shared_access_signature is not None,
        cs.x509,
    ]
    if cs.x509 and any(credentials[:2]):
        raise ConnectionStringError(
            "a connection string cannot use both x509 and a shared access key or signature"
        )
    if not any(credentials):
        raise ConnectionStringError(
            f"a {cs.kind} connection string needs SharedAccessKey, SharedAccessSignature "
            "or x509=true"
        )
    if cs.shared_access_key_name is not None and cs.shared_access_key is None:
        raise ConnectionStringError("SharedAccessKeyName is given without SharedAccessKey")


def build_service(host: str, policy: str, key: str) -> str:
    """HostName=<host>;SharedAccessKeyName=<policy>;SharedAccessKey=<key>, validated."""
    return _build(
        ConnectionString(host_name=host, shared_access_key_name=policy, shared_access_key=key)
    )


def build_device(host: str, device_id: str, key: str, *, gateway_host: str | None = None) -> str:
    """HostName=<host>;DeviceId=<d>;SharedAccessKey=<key>[;GatewayHostName=<gw>], validated."""
    return _build(
        ConnectionString(
            host_name=host,
            device_id=device_id,
            shared_access_key=key,
            gateway_host_name=gateway_host,
        )
    )


def build_module(
    host: str, device_id: str, module_id: str, key: str, *, gateway_host: str | None = None
) -> str:
    """HostName=<host>;DeviceId=<d>;ModuleId=<m>;SharedAccessKey=<key>[;GatewayHostName=..]."""
    return _build(
        ConnectionString(
            host_name=host,
            device_id=device_id,
            module_id=module_id,
            shared_access_key=key,
            gateway_host_name=gateway_host,
        )
    )


def _build(cs: ConnectionString) -> str:
    for name, value in cs.parts():
        if ";" in value or value != value.strip():
            raise ConnectionStringError(f"{name} contains ';' or surrounding spaces")
    # Round-trip through parse() so the built string is exactly what parse() accepts.
    text = format(cs)
    parse(text)
    return text
