"""Per-link and per-delivery state the engine keeps and the transport reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .performatives import RCV_FIRST, SND_MIXED, Source, Target


@dataclass(eq=False)
class Link:
    """One attached link, keyed by (session channel, the client's handle).

    `role` is the CLIENT's role: "sender" means the client sends and we receive
    (telemetry, twin requests, $cbs requests); "receiver" means we send."""

    session: int
    handle: int
    name: str
    role: str
    source: Source | None
    target: Target | None
    snd_settle_mode: int = SND_MIXED
    rcv_settle_mode: int = RCV_FIRST
    properties: dict = field(default_factory=dict)
    max_message_size: int | None = None  # the peer's limit for what we send (None: none)
    # For links we send on: credit the client granted and our delivery-count.
    credit: int = 0
    delivery_count: int = 0
    drain: bool = False
    # For links we receive on: our limit, and the delivery being reassembled.
    our_max_message_size: int = 0
    attached: bool = False  # our attach reply went out
    detached: bool = False
    our_handle: int = 0
    unsettled: dict[int, Any] = field(default_factory=dict)  # delivery-id -> tag
    wire_size: int = 0  # bytes of its attach, counted against the connection's budget

    @property
    def address(self) -> str | None:
        """Target address for client senders, source address for client receivers."""
        terminus = self.target if self.role == "sender" else self.source
        return None if terminus is None else terminus.address

    def __repr__(self) -> str:  # events are logged: keep it to what identifies the link
        return (f"Link(session={self.session}, handle={int(self.handle)}, name={self.name!r}, "
                f"role={self.role!r}, address={self.address!r})")

    @property
    def key(self) -> tuple[int, int]:
        return (self.session, self.handle)


@dataclass(eq=False)
class Delivery:
    """A message we sent: what the transport keeps to match the client's disposition."""

    link: Link
    delivery_id: int
    tag: bytes
    settled: bool
