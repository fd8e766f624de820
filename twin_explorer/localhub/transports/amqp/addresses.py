"""Link addresses: which IoT Hub node an ATTACH names (reference 0.6, C.1, D).

Clients spell one node three ways: a bare path (Node), an absolute URL
(``amqps://host[:port]/...``: uamqp, pyamqp, .NET) and with ``deviceBound`` capitalised
(.NET). :func:`parse_address` strips the scheme and authority, URL-decodes the id
segments and compares the fixed segments case-insensitively.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import unquote


class Kind(enum.Enum):
    CBS = "$cbs"
    TWIN = "twin"
    METHODS = "methods"
    EVENTS = "events"  # telemetry (client sender) or module inputs (client receiver)
    DEVICEBOUND = "devicebound"  # C2D to a device (client receiver)
    SERVICE_C2D = "service devicebound"  # the service's C2D sender
    FEEDBACK = "feedback"  # the service's C2D feedback receiver
    EVENTHUB = "eventhub"  # the Event Hub-compatible endpoint's nodes (eventhub.py)
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Node:
    kind: Kind
    device_id: str | None = None
    module_id: str | None = None

    @property
    def client_id(self) -> str | None:
        """``d`` or ``d/m`` for device and module nodes, None for service nodes."""
        if self.device_id is None:
            return None
        return f"{self.device_id}/{self.module_id}" if self.module_id else self.device_id

    @property
    def is_service(self) -> bool:
        return self.kind in (Kind.SERVICE_C2D, Kind.FEEDBACK, Kind.EVENTHUB)


UNKNOWN = Node(Kind.UNKNOWN)

# The identity nodes' tails, lowercased.
_TAILS = {
    ("twin",): Kind.TWIN,
    ("methods", "devicebound"): Kind.METHODS,
    ("messages", "events"): Kind.EVENTS,
    ("messages", "devicebound"): Kind.DEVICEBOUND,
}


def path_of(address: str) -> str:
    """``amqps://host:5671/a/b`` -> ``/a/b``; a bare path is kept as it is."""
    text = address.strip()
    scheme, sep, rest = text.partition("://")
    if sep and scheme.replace("+", "").replace("-", "").isalnum():
        _, slash, path = rest.partition("/")
        return "/" + path if slash else "/"
    return text


def parse_address(address: str | None) -> Node:
    """The node an address names, or :data:`UNKNOWN`."""
    if not address:
        return UNKNOWN
    path = path_of(address)
    if path.lower() in ("$cbs", "/$cbs"):
        return Node(Kind.CBS)
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if lowered == ["messages", "devicebound"]:
        return Node(Kind.SERVICE_C2D)
    if lowered == ["messages", "servicebound", "feedback"]:
        return Node(Kind.FEEDBACK)
    if len(parts) < 3 or lowered[0] != "devices":
        return UNKNOWN
    device_id = unquote(parts[1])
    module_id = None
    rest = lowered[2:]
    if rest[0] == "modules" and len(parts) >= 5:
        module_id = unquote(parts[3])
        rest = lowered[4:]
    kind = _TAILS.get(tuple(rest))
    if kind is None or not device_id or module_id == "":
        return UNKNOWN
    return Node(kind, device_id, module_id)


def device_of(to: str | None) -> str | None:
    """The device a service C2D message is for: ``/devices/{d}/messages/devicebound``."""
    node = parse_address(to)
    return node.device_id if node.kind is Kind.DEVICEBOUND else None
