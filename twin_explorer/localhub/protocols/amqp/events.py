"""What `ServerConnection` reports to the transport: one frozen dataclass per happening."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .message import Message
from .performatives import Error

if TYPE_CHECKING:
    from .links import Link


@dataclass(frozen=True)
class SaslInitReceived:
    """The client chose a SASL mechanism; answer with `conn.sasl_outcome(ok)`.

    For PLAIN, `authcid` and `password` hold the parsed initial response
    (`[authzid] NUL authcid NUL password`); they are None for other mechanisms."""

    mechanism: str
    initial_response: bytes | None
    hostname: str | None
    authcid: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password (a SAS token) in a log line
        return (f"SaslInitReceived(mechanism={self.mechanism!r}, hostname={self.hostname!r}, "
                f"authcid={self.authcid!r})")


@dataclass(frozen=True)
class ConnectionOpened:
    container_id: str
    hostname: str | None
    max_frame_size: int
    idle_timeout: float | None  # seconds, as the peer asked (None: no timeout)
    properties: dict | None


@dataclass(frozen=True)
class SessionBegun:
    channel: int


@dataclass(frozen=True)
class LinkAttachRequested:
    """Answer with `conn.accept_link(link)` or `conn.refuse_link(link, error)`."""

    link: Link


@dataclass(frozen=True)
class CreditChanged:
    """The client's flow changed the credit of a link we send on (drain: use it or lose it)."""

    link: Link
    credit: int
    drain: bool


@dataclass(frozen=True)
class MessageReceived:
    link: Link
    delivery_id: int
    delivery_tag: bytes
    message: Message
    settled: bool


@dataclass(frozen=True)
class DeliveryUpdated:
    """The client's disposition for a delivery we sent."""

    link: Link
    delivery_tag: bytes
    outcome: Any
    settled: bool


@dataclass(frozen=True)
class LinkDetached:
    link: Link
    error: Error | None
    closed: bool


@dataclass(frozen=True)
class SessionEnded:
    channel: int


@dataclass(frozen=True)
class ConnectionClosed:
    """Peer close, EOF, idle timeout or protocol error; nothing more is accepted after it."""

    error: Error | None


Event = (SaslInitReceived | ConnectionOpened | SessionBegun | LinkAttachRequested
         | CreditChanged | MessageReceived | DeliveryUpdated | LinkDetached | SessionEnded
         | ConnectionClosed)
