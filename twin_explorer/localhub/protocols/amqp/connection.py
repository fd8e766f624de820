"""Server side of one AMQP 1.0 connection, as a sans-I/O state machine (API first)."""

from __future__ import annotations

from .events import Event
from .links import Delivery, Link
from .message import Message
from .performatives import Error, Source, Target


class ServerConnection:
    def __init__(
        self,
        container_id: str = "localhub",
        *,
        max_frame_size: int = 65536,
        channel_max: int = 8191,
        idle_timeout: float = 240.0,
        sasl_mechanisms: tuple[str, ...] = ("MSSBCBS", "PLAIN", "ANONYMOUS"),
        incoming_window: int = 5000,
        max_message_size: int = 262144,
    ) -> None:
        raise NotImplementedError

    def receive_data(self, data: bytes) -> list[Event]:
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        raise NotImplementedError

    @property
    def pending_output_bytes(self) -> int:
        raise NotImplementedError

    def tick(self, now: float) -> list[Event]:
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        raise NotImplementedError

    def sasl_outcome(self, ok: bool) -> None:
        raise NotImplementedError

    def accept_link(self, link: Link, *, properties: dict | None = None,
                    max_message_size: int | None = None, source: Source | None = None,
                    target: Target | None = None) -> None:
        raise NotImplementedError

    def refuse_link(self, link: Link, error: Error) -> None:
        raise NotImplementedError

    def grant_credit(self, link: Link, credit: int) -> None:
        raise NotImplementedError

    def send(self, link: Link, message: Message | bytes, *, settled: bool,
             tag: bytes | None = None) -> Delivery | None:
        raise NotImplementedError

    def settle(self, link: Link, delivery_id: int, outcome: object, *,
               settled: bool = True) -> None:
        raise NotImplementedError

    def detach(self, link: Link, error: Error | None = None, *, closed: bool = True) -> None:
        raise NotImplementedError

    def close(self, error: Error | None = None) -> None:
        raise NotImplementedError
