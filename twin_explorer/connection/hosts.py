"""Host names with an optional port, as they appear in HostName and in SAS resources.

The service SDK keeps a ``:port`` in HostName and signs it into the token (reference B.1),
so both the connection-string parser and the token checker need the same split.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.%]+\]")


class HostError(ValueError):
    """A host[:port] that cannot be used; the message is plain words."""


def split_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; the host keeps its brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise HostError("the host name has an unclosed '['")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise HostError("the host name has text after ']'")
        port_text = rest[1:] if rest else None
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    else:
        host, port_text = text, None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not port_text.isascii():
        raise HostError("the port after ':' is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise HostError("the port must be between 1 and 65535")
    return host, port


def validate_host(host: str) -> None:
    """Raise HostError unless ``host`` (without port) is a DNS name, IPv4 or bracketed IPv6."""
    if not host:
        raise HostError("the host name is empty")
    if len(host) > 253:
        raise HostError("the host name is longer than 253 characters")
    if not (_NAME.fullmatch(host) or _IPV6.fullmatch(host)):
        raise HostError("the host name may only hold letters, digits, '-', '_' and '.'")


def parse_host_port(text: str) -> tuple[str, int | None]:
    """split_host_port plus validation of the host part."""
    host, port = split_host_port(text)
    validate_host(host)
    return host, port
