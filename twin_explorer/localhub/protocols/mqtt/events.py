"""What `ServerConnection.next_event()` reports to the hub."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .packets import Will


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


# No complete packet buffered: feed more bytes with receive_data().
NEED_DATA = _Sentinel("NEED_DATA")
# A CONNECT is waiting for accept() or refuse(); later bytes stay buffered until then
# (MQTT-3.1.4-5: nothing after CONNECT is processed before the connection is accepted).
PAUSED = _Sentinel("PAUSED")


class DisconnectReason(Enum):
    CLIENT_DISCONNECT = "client sent DISCONNECT"
    CONNECTION_LOST = "connection closed without DISCONNECT"
    PROTOCOL_ERROR = "protocol violation"
    KEEPALIVE_TIMEOUT = "silent for more than 1.5 x keep-alive"
    CONNECT_TIMEOUT = "no CONNECT in time"
    REFUSED = "CONNECT refused"
    SERVER_CLOSED = "closed by the server"


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    client_id: str
    username: str | None
    password: bytes | None
    clean_session: bool
    keepalive: int
    will: Will | None = None


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A SUBSCRIBE was answered; `filters` were granted, `rejected` got 0x80."""

    packet_id: int
    filters: tuple[str, ...]
    rejected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    packet_id: int
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Published:
    """A client PUBLISH. For QoS 1 the hub must call `ack(packet_id)` once it has taken it.

    ``dup`` is only the client's hint: a message re-sent after a reconnect is reported again
    (the hub may have taken it, but cannot know), so requests are told apart by their own
    ``$rid``, not by packet id.
    """

    topic: str
    payload: bytes
    qos: int
    dup: bool = False
    packet_id: int | None = None
    retain: bool = False

    @property
    def needs_ack(self) -> bool:
        return self.qos == 1


@dataclass(frozen=True, slots=True)
class PubAcked:
    """The client acknowledged a QoS 1 PUBLISH we sent (to `topic`)."""

    packet_id: int
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is over; the shell closes the socket once it has sent data_to_send().

    `will` is the client's will message when the close was not a clean DISCONNECT (IoT Hub
    forwards it as telemetry); None otherwise.
    """

    reason: DisconnectReason
    detail: str = ""
    will: Will | None = None

    @property
    def graceful(self) -> bool:
        return self.reason is DisconnectReason.CLIENT_DISCONNECT


Event = ConnectRequested | Subscribed | Unsubscribed | Published | PubAcked | Disconnected
