"""Server side of one AMQP 1.0 connection, as a sans-I/O state machine.

Usage from a shell that owns the socket (time is always passed in, nothing here reads a clock):

    conn = ServerConnection("localhub")
    for event in conn.receive_data(chunk, now=now):   # b"" signals EOF
        ...   # SaslInitReceived -> conn.sasl_outcome(ok); LinkAttachRequested ->
              # conn.accept_link()/refuse_link(); MessageReceived -> conn.settle() ...
    transport.write(conn.data_to_send(now=now))
    conn.tick(now) at conn.next_deadline()             # heartbeats and our idle timeout

Replies the protocol needs anyway (protocol headers, SASL mechanisms, OPEN, BEGIN, END,
CLOSE, session flow) are queued by the engine itself; the transport only decides what the
hub decides (authentication, which links exist, credit, messages, outcomes). A peer that
breaks the protocol gets a CLOSE with the matching condition and a `ConnectionClosed`
event: nothing raises out of `receive_data`. Memory per connection stays bounded: one
partial frame (max frame size), partly received messages (each under its link's max message
size, all under `max_reassembly_bytes`), and caps on sessions (channel-max), links (count and
the bytes their attach frames hold) and unsettled deliveries; `pending_output_bytes` lets
the transport stop reading while the peer does not read what we send.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Any, ClassVar

from . import errors
from .events import (
    ConnectionClosed,
    ConnectionOpened,
    CreditChanged,
    DeliveryUpdated,
    Event,
    LinkAttachRequested,
    LinkDetached,
    MessageReceived,
    SaslInitReceived,
    SessionBegun,
    SessionEnded,
)
from .exceptions import AmqpDecodeError, AmqpFramingError
from .frames import (
    AMQP_FRAME,
    AMQP_HEADER,
    EMPTY_FRAME,
    HEADER_SIZE,
    MIN_MAX_FRAME_SIZE,
    SASL_FRAME,
    SASL_HEADER,
    FrameReader,
    encode_frame,
)
from .links import Delivery, Link
from .message import Message, decode_message, encode_message
from .performatives import (
    RECEIVER,
    SENDER,
    Accepted,
    Attach,
    Begin,
    Close,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    Modified,
    Open,
    Rejected,
    Released,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    Source,
    Target,
    Transfer,
)
from .types import Array, Symbol, decode_value, encode

SEQUENCE_MOD = 1 << 32
HANDLE_MAX = 255  # links per session we accept (advertised in BEGIN)
MAX_LINKS = 256  # links per connection, all sessions together
MAX_LINK_BYTES = 1 << 20  # what the live links' attach frames (names, termini, properties) hold
MAX_UNSETTLED = 4096  # unsettled incoming deliveries per connection awaiting settle()
MAX_REASSEMBLY = 1 << 20  # bytes of partly received messages, all links together
# Our frames never exceed this even when the peer allows more (rhea advertises no limit).
OUTPUT_FRAME_CAP = 1 << 20


class State(Enum):
    HEADER = "await protocol header"
    SASL_INIT = "await sasl-init"
    SASL_OUTCOME = "await sasl_outcome()"
    AMQP_HEADER = "await AMQP header after SASL"
    OPEN = "await open"
    OPENED = "open"
    CLOSE_SENT = "close sent, await the peer's close"
    CLOSED = "closed"


class _Protocol(Exception):
    """A connection-level protocol error: close with this condition."""

    def __init__(self, condition: Symbol, description: str) -> None:
        super().__init__(description)
        self.error = Error(condition, description)


class _Session:
    def __init__(self, channel: int, begin: Begin, incoming_window: int) -> None:
        self.channel = channel
        self.links: dict[int, Link] = {}  # by the peer's handle
        self.our_handles: set[int] = set()
        self.ending = False  # we sent END, await the peer's
        # Incoming (peer -> us) transfer sequence.
        self.next_incoming_id = begin.next_outgoing_id
        self.window = incoming_window
        self.incoming_window = incoming_window
        # Outgoing (us -> peer).
        self.next_outgoing_id = 0
        self.next_delivery_id = 0
        self.remote_incoming_window = begin.incoming_window
        self.held: deque[bytes] = deque()  # transfer frames waiting for the peer's window
        self.held_bytes = 0
        self.sent_unsettled: dict[int, Delivery] = {}  # our delivery-id -> delivery
        self.received_unsettled: dict[int, Link] = {}  # the client's delivery-id -> link

    def free_handle(self) -> int:
        handle = 0
        while handle in self.our_handles:
            handle += 1
        self.our_handles.add(handle)
        return handle


class _Partial:
    """An incoming multi-frame delivery being put back together."""

    __slots__ = ("chunks", "delivery_id", "settled", "size", "tag")

    def __init__(self, delivery_id: int, tag: bytes, settled: bool) -> None:
        self.delivery_id = delivery_id
        self.tag = tag
        self.settled = settled
        self.chunks: list[bytes] = []
        self.size = 0


def _plain_response(data: bytes | None) -> tuple[str | None, str | None]:
    """PLAIN initial response `[authzid] NUL authcid NUL password` (RFC 4616)."""
    if data is None:
        return None, None
    parts = data.split(b"\x00")
    if len(parts) != 3:
        return None, None
    try:
        return parts[1].decode("utf-8"), parts[2].decode("utf-8")
    except UnicodeDecodeError:
        return None, None


class ServerConnection:
    """One AMQP connection, server side. See the module docstring for the calling pattern."""

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
        max_links: int = MAX_LINKS,
        max_unsettled: int = MAX_UNSETTLED,
        max_reassembly_bytes: int = MAX_REASSEMBLY,
    ) -> None:
        self.container_id = container_id
        self.max_frame_size = max(max_frame_size, MIN_MAX_FRAME_SIZE)
        self.channel_max = channel_max
        self.idle_timeout = idle_timeout
        self.sasl_mechanisms = tuple(sasl_mechanisms)
        self.incoming_window = incoming_window
        self.max_message_size = max_message_size
        self.max_links = max_links
        self.max_unsettled = max_unsettled
        self.max_reassembly_bytes = max_reassembly_bytes
        self.state = State.HEADER
        self.sasl_mechanism: str | None = None
        self.peer_open: Open | None = None
        self.peer_max_frame_size = MIN_MAX_FRAME_SIZE
        self.peer_idle_timeout: float | None = None  # seconds
        self._reader = FrameReader(self.max_frame_size)
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._sessions: dict[int, _Session] = {}
        # Channels whose session ended: azure-eventhub detaches links after its own END, so
        # frames on them are dropped rather than treated as a protocol error.
        self._ended: set[int] = set()
        self._link_count = 0
        self._link_bytes = 0
        self._partials: dict[tuple[int, int], _Partial] = {}
        self._partial_bytes = 0
        self._unsettled_in = 0
        self._tag_counter = 0
        self._open_sent = False
        self._closed_reported = False
        self._last_rx: float | None = None
        self._last_tx: float | None = None
        self._rx_untimed = False
        self._tx_untimed = False

    # ------------------------------------------------------------------ I/O surface

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def pending_output_bytes(self) -> int:
        """Bytes queued for the peer: output not yet taken plus transfers held by its window."""
        return self._out_bytes + sum(s.held_bytes for s in self._sessions.values())

    def data_to_send(self, *, now: float | None = None) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        if data:
            if now is None:
                self._tx_untimed = True
            else:
                self._last_tx = now
        return data

    def receive_data(self, data: bytes, *, now: float | None = None) -> list[Event]:
        """Feed bytes from the peer (b"" = EOF); return what happened, in order."""
        events: list[Event] = []
        if self.state is State.CLOSED:
            return events
        if not data:
            self._write_close_if_open(None)
            self._finish(events, None)
            return events
        if now is None:
            self._rx_untimed = True
        else:
            self._last_rx = now
        self._reader.feed(data)
        if self.state is State.SASL_OUTCOME and self._reader.buffered > self.max_frame_size:
            # Nothing is read while the hub checks credentials: bound what may pile up.
            self._fail(events, Error(errors.FRAMING_ERROR, "data while SASL is pending"))
            return events
        self._pump(events)
        return events

    def tick(self, now: float) -> list[Event]:
        """Heartbeat when the peer would otherwise time out; close a peer silent too long."""
        events: list[Event] = []
        if self.state is State.CLOSED:
            return events
        self._account(now)
        assert self._last_rx is not None and self._last_tx is not None
        if self.idle_timeout and now - self._last_rx >= self.idle_timeout:
            self._fail(events, Error(errors.RESOURCE_LIMIT_EXCEEDED, "local-idle-timeout expired"))
            return events
        if (self.peer_idle_timeout and self.state in (State.OPENED, State.CLOSE_SENT)
                and now - self._last_tx >= self.peer_idle_timeout / 2):
            self._emit(EMPTY_FRAME)
            self._last_tx = now
        return events

    def next_deadline(self) -> float | None:
        if self.state is State.CLOSED or self._last_rx is None:
            return None
        deadlines = []
        if self.idle_timeout:
            deadlines.append(self._last_rx + self.idle_timeout)
        if self.peer_idle_timeout and self._last_tx is not None:
            deadlines.append(self._last_tx + self.peer_idle_timeout / 2)
        return min(deadlines, default=None)

    def _account(self, now: float) -> None:
        """Date activity that came without a `now` (or none yet) at this tick."""
        if self._last_rx is None or self._rx_untimed:
            self._last_rx = now
            self._rx_untimed = False
        if self._last_tx is None or self._tx_untimed:
            self._last_tx = now
            self._tx_untimed = False

    # ------------------------------------------------------------------ hub decisions

    def sasl_outcome(self, ok: bool) -> list[Event]:
        """Answer the SaslInitReceived; on success, process anything the client pipelined."""
        events: list[Event] = []
        if self.state is not State.SASL_OUTCOME:
            return events
        self._emit(encode_frame(0, SaslOutcome(code=0 if ok else 1), frame_type=SASL_FRAME))
        if not ok:
            self._finish(events, Error(errors.UNAUTHORIZED_ACCESS, "SASL authentication failed"))
            return events
        self.state = State.AMQP_HEADER
        self._pump(events)
        return events

    def accept_link(self, link: Link, *, properties: dict | None = None,
                    max_message_size: int | None = None, source: Source | None = None,
                    target: Target | None = None) -> None:
        session = self._live_session(link)
        if session is None or link.attached or link.detached:
            return
        we_send = link.role == "receiver"
        link.our_max_message_size = max_message_size or self.max_message_size
        link.source = source or link.source or Source()
        link.target = target or link.target or Target()
        self._send_attach(session, link, link.source, link.target, properties,
                          initial_delivery_count=0 if we_send else None)

    def refuse_link(self, link: Link, error: Error, *, echo: bool = False) -> None:
        """Attach reply with a null terminus on our side (spec 2.6.3), then detach closed.
        ``echo``: attach with the client's termini instead, as Azure's Event Hubs does;
        pyamqp drops the detach's error after a null terminus and retries for ever."""
        session = self._live_session(link)
        if session is None or link.detached:
            return
        if echo and not link.attached:
            self._send_attach(session, link, link.source or Source(), link.target or Target(),
                              None, initial_delivery_count=0 if link.role == "receiver" else None)
        self._send_detach(session, link, error, closed=True)

    def grant_credit(self, link: Link, credit: int) -> None:
        """Let a client sender send `credit` more messages (replaces the previous credit)."""
        session = self._live_session(link)
        if session is None or not link.attached or link.detached or link.role != "sender":
            return
        link.credit = max(0, credit)
        self._send_flow(session, link)

    def send(self, link: Link, message: Message | bytes, *, settled: bool,
             tag: bytes | None = None) -> Delivery | None:
        """Send one message on a link the client receives on; None when it has no credit."""
        session = self._live_session(link)
        if (session is None or not link.attached or link.detached
                or link.role != "receiver" or link.credit <= 0):
            return None
        payload = encode_message(message) if isinstance(message, Message) else bytes(message)
        if tag is None:
            self._tag_counter += 1
            tag = self._tag_counter.to_bytes(16, "big")  # .NET reads tags as GUIDs (A.5)
        delivery_id = session.next_delivery_id
        session.next_delivery_id = (delivery_id + 1) % SEQUENCE_MOD
        link.credit -= 1
        link.delivery_count = (link.delivery_count + 1) % SEQUENCE_MOD
        delivery = Delivery(link, delivery_id, tag, settled)
        if not settled:
            session.sent_unsettled[delivery_id] = delivery
        limit = min(self.peer_max_frame_size, OUTPUT_FRAME_CAP) - HEADER_SIZE
        offset = 0
        first = True
        while first or offset < len(payload):
            transfer = Transfer(
                handle=link.our_handle, delivery_id=delivery_id,
                delivery_tag=tag if first else None, message_format=0 if first else None,
                settled=settled if first else None, more=True,
            )
            room = limit - len(encode(transfer))  # `more` is one byte either way
            chunk = payload[offset:offset + room]
            offset += len(chunk)
            transfer.more = offset < len(payload)
            self._send_transfer(session, encode_frame(session.channel, transfer, chunk))
            first = False
        if link.credit == 0 and link.drain:
            link.drain = False
        return delivery

    def complete_drain(self, link: Link) -> None:
        """The transport has nothing more for a draining link: spend its credit (spec 2.6.7)."""
        session = self._live_session(link)
        if session is None or not link.attached or link.role != "receiver" or not link.drain:
            return
        link.delivery_count = (link.delivery_count + link.credit) % SEQUENCE_MOD
        link.credit = 0
        link.drain = False
        self._send_flow(session, link, drain=True)

    def settle(self, link: Link, delivery_id: int, outcome: Any, *,
               settled: bool = True) -> None:
        """Disposition for a delivery we received (no-op if the client sent it settled)."""
        session = self._live_session(link)
        if session is None or delivery_id not in link.unsettled:
            return
        if settled:
            self._untrack_unsettled(session, link, delivery_id)
        self._emit(encode_frame(session.channel, Disposition(
            role=RECEIVER, first=delivery_id, last=delivery_id, settled=settled, state=outcome)))

    def detach(self, link: Link, error: Error | None = None, *, closed: bool = True) -> None:
        session = self._live_session(link)
        if session is None or link.detached:
            return
        self._send_detach(session, link, error, closed=closed)

    def close(self, error: Error | None = None) -> None:
        """Write our CLOSE (the peer's CLOSE then gives ConnectionClosed). Before the AMQP
        header and OPEN there is nothing to close: the engine just stops and the transport
        drops the socket."""
        if self.state in (State.CLOSED, State.CLOSE_SENT):
            return
        if self.state in (State.OPEN, State.OPENED):
            self._write_close_if_open(error)
            self.state = State.CLOSE_SENT
        else:
            self.state = State.CLOSED  # nothing AMQP was opened: the transport drops the socket

    # ------------------------------------------------------------------ input pump

    def _pump(self, events: list[Event]) -> None:
        try:
            while self.state not in (State.CLOSED, State.SASL_OUTCOME):
                if self.state in (State.HEADER, State.AMQP_HEADER):
                    if not self._read_header():
                        return
                    continue
                frame = self._reader.next_frame()
                if frame is None:
                    return
                frame_type, channel, body = frame
                if not body:
                    continue  # an empty frame: a heartbeat
                self._dispatch(frame_type, channel, body, events)
        except _Protocol as exc:
            self._fail(events, exc.error)
        except AmqpFramingError as exc:
            self._fail(events, Error(errors.FRAMING_ERROR, str(exc)))
        except AmqpDecodeError as exc:
            self._fail(events, Error(errors.DECODE_ERROR, str(exc)))

    def _read_header(self) -> bool:
        header = self._reader.take(HEADER_SIZE)
        if header is None:
            return False
        if self.state is State.HEADER and header == SASL_HEADER:
            self._emit(SASL_HEADER)
            mechanisms = Array(0xA3, [Symbol(m) for m in self.sasl_mechanisms])
            self._emit(encode_frame(0, SaslMechanisms(mechanisms), frame_type=SASL_FRAME))
            self.state = State.SASL_INIT
            return True
        if header == AMQP_HEADER:
            self._emit(AMQP_HEADER)
            self.state = State.OPEN
            return True
        # Spec 2.2: answer a header we do not speak with the one we do, then close.
        self._emit(SASL_HEADER if header[:5] == b"AMQP\x03" else AMQP_HEADER)
        raise _Protocol(errors.NOT_ALLOWED, "unsupported protocol header")

    def _dispatch(self, frame_type: int, channel: int, body: bytes, events: list[Event]) -> None:
        performative, pos = decode_value(body, 0)
        if self.state is State.SASL_INIT:
            if frame_type != SASL_FRAME or not isinstance(performative, SaslInit):
                raise _Protocol(errors.NOT_ALLOWED, "expected sasl-init")
            self._on_sasl_init(performative, events)
            return
        if frame_type != AMQP_FRAME:
            raise _Protocol(errors.FRAMING_ERROR, "SASL frame after the SASL exchange")
        if self.state is State.OPEN:
            if not isinstance(performative, Open) or pos != len(body):
                raise _Protocol(errors.NOT_ALLOWED, "expected open")
            self._on_open(performative, events)
            return
        if self.state is State.CLOSE_SENT and not isinstance(performative, Close):
            return  # spec 2.4.3: after our close, only the peer's close matters
        if channel in self._ended and not isinstance(performative, Begin | Close):
            return
        if isinstance(performative, Transfer):
            self._on_transfer(channel, performative, body[pos:], events)
            return
        if pos != len(body):
            raise _Protocol(errors.FRAMING_ERROR, "payload after a performative that has none")
        handler = self._HANDLERS.get(type(performative))
        if handler is None:
            raise _Protocol(errors.NOT_ALLOWED, f"unexpected {type(performative).__name__}")
        handler(self, channel, performative, events)

    # ------------------------------------------------------------------ SASL and OPEN

    def _on_sasl_init(self, init: SaslInit, events: list[Event]) -> None:
        mechanism = str(init.mechanism)
        if mechanism not in self.sasl_mechanisms:
            self._emit(encode_frame(0, SaslOutcome(code=1), frame_type=SASL_FRAME))
            raise _Protocol(errors.UNAUTHORIZED_ACCESS, f"SASL mechanism {mechanism} not offered")
        self.sasl_mechanism = mechanism
        authcid, password = (_plain_response(init.initial_response)
                             if mechanism == "PLAIN" else (None, None))
        self.state = State.SASL_OUTCOME
        events.append(SaslInitReceived(mechanism, init.initial_response, init.hostname,
                                       authcid, password))

    def _on_open(self, open_: Open, events: list[Event]) -> None:
        self.peer_open = open_
        if open_.max_frame_size < MIN_MAX_FRAME_SIZE:
            self._send_open()
            raise _Protocol(errors.FRAME_SIZE_TOO_SMALL, "max-frame-size below 512")
        self.peer_max_frame_size = open_.max_frame_size
        self.peer_idle_timeout = open_.idle_timeout / 1000 if open_.idle_timeout else None
        self._send_open()
        self.state = State.OPENED
        events.append(ConnectionOpened(open_.container_id, open_.hostname, open_.max_frame_size,
                                       self.peer_idle_timeout, open_.properties))

    def _send_open(self) -> None:
        if self._open_sent:
            return
        self._open_sent = True
        idle = int(self.idle_timeout * 1000) if self.idle_timeout else None
        self._emit(encode_frame(0, Open(
            container_id=self.container_id, hostname=None, max_frame_size=self.max_frame_size,
            channel_max=self.channel_max, idle_timeout=idle)))

    # ------------------------------------------------------------------ sessions

    def _session(self, channel: int) -> _Session:
        session = self._sessions.get(channel)
        if session is None:
            raise _Protocol(errors.NOT_ALLOWED, f"channel {channel} has no session")
        return session

    def _on_begin(self, channel: int, begin: Begin, events: list[Event]) -> None:
        if begin.remote_channel is not None:
            raise _Protocol(errors.NOT_ALLOWED, "begin answering a session we never began")
        if channel > self.channel_max:
            raise _Protocol(errors.NOT_ALLOWED, f"channel {channel} over channel-max")
        if channel in self._sessions:
            raise _Protocol(errors.NOT_ALLOWED, f"channel {channel} already has a session")
        self._sessions[channel] = _Session(channel, begin, self.incoming_window)
        self._ended.discard(channel)
        self._emit(encode_frame(channel, Begin(
            remote_channel=channel, next_outgoing_id=0, incoming_window=self.incoming_window,
            outgoing_window=self.incoming_window, handle_max=HANDLE_MAX)))
        events.append(SessionBegun(channel))

    def _on_end(self, channel: int, end: End, events: list[Event]) -> None:
        session = self._session(channel)
        self._drop_session_links(session, events)
        if not session.ending:
            self._emit(encode_frame(channel, End()))
        del self._sessions[channel]
        self._ended.add(channel)
        events.append(SessionEnded(channel))

    def _end_session(self, session: _Session, error: Error, events: list[Event]) -> None:
        """A session-level error (spec 2.8.16): END with it; the links go with the session."""
        if session.ending:
            return
        self._drop_session_links(session, events)
        session.ending = True
        self._emit(encode_frame(session.channel, End(error)))

    def _drop_session_links(self, session: _Session, events: list[Event]) -> None:
        for link in list(session.links.values()):
            was_detached = link.detached
            self._forget_link(session, link)
            if not was_detached:
                events.append(LinkDetached(link, None, False))
        session.held.clear()
        session.held_bytes = 0

    # ------------------------------------------------------------------ links

    def _on_attach(self, channel: int, attach: Attach, events: list[Event]) -> None:
        session = self._session(channel)
        if session.ending:
            return
        if attach.handle > HANDLE_MAX:
            self._end_session(session, Error(errors.RESOURCE_LIMIT_EXCEEDED,
                                             f"handle over handle-max {HANDLE_MAX}"), events)
            return
        if attach.handle in session.links:
            self._end_session(session, Error(errors.HANDLE_IN_USE,
                                             f"handle {attach.handle} in use"), events)
            return
        wire_size = len(encode(attach))
        if (self._link_count >= self.max_links
                or self._link_bytes + wire_size > MAX_LINK_BYTES):
            raise _Protocol(errors.RESOURCE_LIMIT_EXCEEDED, "too many links on one connection")
        link = Link(
            session=channel, handle=attach.handle, name=attach.name,
            role="receiver" if attach.role == RECEIVER else "sender",
            source=attach.source if isinstance(attach.source, Source) else None,
            target=attach.target if isinstance(attach.target, Target) else None,
            snd_settle_mode=attach.snd_settle_mode, rcv_settle_mode=attach.rcv_settle_mode,
            properties=dict(attach.properties or {}),
            max_message_size=attach.max_message_size or None,
            delivery_count=(attach.initial_delivery_count or 0) if attach.role == SENDER else 0,
        )
        link.our_handle = session.free_handle()
        link.wire_size = wire_size
        session.links[attach.handle] = link
        self._link_count += 1
        self._link_bytes += wire_size
        events.append(LinkAttachRequested(link))

    def _send_attach(self, session: _Session, link: Link, source: Source | None,
                     target: Target | None, properties: dict | None, *,
                     initial_delivery_count: int | None) -> None:
        link.attached = True
        self._emit(encode_frame(session.channel, Attach(
            name=link.name, handle=link.our_handle,
            role=SENDER if link.role == "receiver" else RECEIVER,
            snd_settle_mode=link.snd_settle_mode, rcv_settle_mode=link.rcv_settle_mode,
            source=source, target=target, initial_delivery_count=initial_delivery_count,
            max_message_size=link.our_max_message_size or self.max_message_size,
            properties=properties)))

    def _send_detach(self, session: _Session, link: Link, error: Error | None, *,
                     closed: bool) -> None:
        if not link.attached:
            # Spec 2.6.3: a link is refused by attaching (our terminus null), then detaching.
            we_send = link.role == "receiver"
            self._send_attach(session, link, None if we_send else link.source,
                              link.target if we_send else None, None,
                              initial_delivery_count=0 if we_send else None)
        link.detached = True
        self._drop_partial(link)
        self._emit(encode_frame(session.channel,
                                Detach(handle=link.our_handle, closed=closed, error=error)))

    def _forget_link(self, session: _Session, link: Link) -> None:
        link.detached = True
        if session.links.get(link.handle) is link:
            del session.links[link.handle]
            self._link_count -= 1
        session.our_handles.discard(link.our_handle)
        self._drop_partial(link)
        for delivery_id in [d for d, v in session.sent_unsettled.items() if v.link is link]:
            del session.sent_unsettled[delivery_id]
        for delivery_id in list(link.unsettled):
            self._untrack_unsettled(session, link, delivery_id)
        self._link_bytes -= link.wire_size
        link.wire_size = 0

    def _on_detach(self, channel: int, detach: Detach, events: list[Event]) -> None:
        session = self._session(channel)
        link = session.links.get(detach.handle)
        if link is None:
            if not session.ending:
                self._end_session(session, Error(errors.UNATTACHED_HANDLE,
                                                 f"detach of unknown handle {detach.handle}"),
                                  events)
            return
        we_started = link.detached
        if not we_started:
            self._send_detach(session, link, None, closed=detach.closed)
        self._forget_link(session, link)
        if not we_started:
            events.append(LinkDetached(link, detach.error, detach.closed))

    def _live_session(self, link: Link) -> _Session | None:
        if self.state is not State.OPENED:
            return None
        session = self._sessions.get(link.session)
        if session is None or session.ending or session.links.get(link.handle) is not link:
            return None
        return session

    # ------------------------------------------------------------------ flow

    def _send_flow(self, session: _Session, link: Link | None, *, drain: bool = False,
                   echo: bool = False) -> None:
        flow = Flow(
            next_incoming_id=session.next_incoming_id, incoming_window=session.incoming_window,
            next_outgoing_id=session.next_outgoing_id, outgoing_window=self.incoming_window,
            echo=echo,
        )
        if link is not None:
            flow.handle = link.our_handle
            flow.delivery_count = link.delivery_count
            flow.link_credit = link.credit
            flow.drain = drain
        self._emit(encode_frame(session.channel, flow))

    def _on_flow(self, channel: int, flow: Flow, events: list[Event]) -> None:
        session = self._session(channel)
        if session.ending:
            return
        next_incoming = 0 if flow.next_incoming_id is None else flow.next_incoming_id
        session.remote_incoming_window = max(
            0, (next_incoming + flow.incoming_window - session.next_outgoing_id) % SEQUENCE_MOD)
        self._release_held(session)
        if flow.handle is None:
            if flow.echo:
                self._send_flow(session, None)
            return
        link = session.links.get(flow.handle)
        if link is None:
            self._end_session(session, Error(errors.UNATTACHED_HANDLE,
                                             f"flow on unknown handle {flow.handle}"), events)
            return
        if link.role == "receiver" and not link.detached and flow.link_credit is not None:
            # Spec 2.6.7: credit = receiver's delivery-count + link-credit - ours.
            count = 0 if flow.delivery_count is None else flow.delivery_count
            credit = (count + flow.link_credit - link.delivery_count) % SEQUENCE_MOD
            link.credit = credit if credit < SEQUENCE_MOD // 2 else 0
            link.drain = flow.drain
            events.append(CreditChanged(link, link.credit, flow.drain))
        if flow.echo and link.attached and not link.detached:
            self._send_flow(session, link)

    def _send_transfer(self, session: _Session, frame: bytes) -> None:
        if session.held or session.remote_incoming_window <= 0:
            session.held.append(frame)
            session.held_bytes += len(frame)
            return
        self._transfer_out(session, frame)

    def _transfer_out(self, session: _Session, frame: bytes) -> None:
        session.next_outgoing_id = (session.next_outgoing_id + 1) % SEQUENCE_MOD
        session.remote_incoming_window -= 1
        self._emit(frame)

    def _release_held(self, session: _Session) -> None:
        while session.held and session.remote_incoming_window > 0:
            frame = session.held.popleft()
            session.held_bytes -= len(frame)
            self._transfer_out(session, frame)

    # ------------------------------------------------------------------ transfers

    def _on_transfer(self, channel: int, transfer: Transfer, payload: bytes,
                     events: list[Event]) -> None:
        session = self._session(channel)
        session.next_incoming_id = (session.next_incoming_id + 1) % SEQUENCE_MOD
        session.incoming_window -= 1
        if session.ending:
            return
        # Transfers are handed on as they arrive, so the window only paces the client:
        # reopen it at half, before a polite client ever has to wait.
        if session.incoming_window <= session.window // 2:
            session.incoming_window = session.window
            self._send_flow(session, None)
        link = session.links.get(transfer.handle)
        if link is None:
            self._end_session(session, Error(errors.UNATTACHED_HANDLE,
                                             f"transfer on unknown handle {transfer.handle}"),
                              events)
            return
        if link.detached:
            return  # in flight when we detached it
        if link.role != "sender" or not link.attached:
            self._send_detach(session, link, Error(errors.NOT_ALLOWED,
                                                   "transfer on a link we send on"), closed=True)
            events.append(LinkDetached(link, None, True))
            return
        partial = self._partials.get(link.key)
        if partial is None:
            if transfer.delivery_id is None or transfer.delivery_tag is None:
                raise _Protocol(errors.INVALID_FIELD, "first transfer lacks delivery-id or tag")
            if link.credit <= 0:
                self._link_error(session, link, errors.TRANSFER_LIMIT_EXCEEDED,
                                 "transfer without link credit", events)
                return
            link.credit -= 1
            link.delivery_count = (link.delivery_count + 1) % SEQUENCE_MOD
            partial = _Partial(transfer.delivery_id, transfer.delivery_tag,
                               bool(transfer.settled))
            self._partials[link.key] = partial
        elif transfer.delivery_id not in (None, partial.delivery_id):
            raise _Protocol(errors.INVALID_FIELD, "transfer interleaves two deliveries")
        if transfer.settled:
            partial.settled = True
        if transfer.aborted:
            self._drop_partial(link)
            return
        if partial.size + len(payload) > link.our_max_message_size:
            self._link_error(session, link, errors.MESSAGE_SIZE_EXCEEDED,
                             f"message over {link.our_max_message_size} bytes", events)
            return
        if self._partial_bytes + len(payload) > self.max_reassembly_bytes:
            self._link_error(session, link, errors.RESOURCE_LIMIT_EXCEEDED,
                             "too many partly sent messages on this connection", events)
            return
        partial.size += len(payload)
        self._partial_bytes += len(payload)
        partial.chunks.append(payload)
        if transfer.more:
            return
        self._drop_partial(link)
        self._deliver(session, link, partial, events)

    def _deliver(self, session: _Session, link: Link, partial: _Partial,
                 events: list[Event]) -> None:
        data = b"".join(partial.chunks)
        try:
            message = decode_message(data)
        except AmqpDecodeError as exc:
            if not partial.settled:
                self._emit(encode_frame(session.channel, Disposition(
                    role=RECEIVER, first=partial.delivery_id, settled=True,
                    state=Rejected(Error(errors.DECODE_ERROR, str(exc))))))
            return
        if not partial.settled:
            if self._unsettled_in >= self.max_unsettled:
                self._link_error(session, link, errors.RESOURCE_LIMIT_EXCEEDED,
                                 "too many unsettled deliveries", events)
                return
            self._track_unsettled(session, link, partial.delivery_id, partial.tag)
        events.append(MessageReceived(link, partial.delivery_id, partial.tag, message,
                                      partial.settled))

    def _drop_partial(self, link: Link) -> None:
        partial = self._partials.pop(link.key, None)
        if partial is not None:
            self._partial_bytes -= partial.size

    def _track_unsettled(self, session: _Session, link: Link, delivery_id: int,
                         tag: bytes) -> None:
        if delivery_id not in link.unsettled:
            self._unsettled_in += 1
        link.unsettled[delivery_id] = tag
        session.received_unsettled[delivery_id] = link

    def _untrack_unsettled(self, session: _Session, link: Link, delivery_id: int) -> None:
        if link.unsettled.pop(delivery_id, None) is not None:
            self._unsettled_in -= 1
        if session.received_unsettled.get(delivery_id) is link:
            del session.received_unsettled[delivery_id]

    def _link_error(self, session: _Session, link: Link, condition: Symbol, description: str,
                    events: list[Event]) -> None:
        error = Error(condition, description)
        self._send_detach(session, link, error, closed=True)
        events.append(LinkDetached(link, error, True))

    def _on_disposition(self, channel: int, disposition: Disposition,
                        events: list[Event]) -> None:
        session = self._session(channel)
        if session.ending:
            return
        if disposition.role != RECEIVER:
            # The client settles deliveries it sent us (rcv-settle-mode second): forget them.
            if disposition.settled:
                for delivery_id in _in_range(disposition, session.received_unsettled):
                    link = session.received_unsettled[delivery_id]
                    self._untrack_unsettled(session, link, delivery_id)
            return
        for delivery_id in _in_range(disposition, session.sent_unsettled):
            delivery = session.sent_unsettled.get(delivery_id)
            if delivery is None:
                continue
            settled = disposition.settled
            if not settled and isinstance(disposition.state, _TERMINAL):
                # rcv-settle-mode second (.NET's C2D receiver): the client states its
                # outcome and waits for us, the sender, to settle before it does.
                self._emit(encode_frame(session.channel, Disposition(
                    role=SENDER, first=delivery_id, last=delivery_id, settled=True,
                    state=disposition.state)))
                settled = True
            if settled:
                del session.sent_unsettled[delivery_id]
                delivery.settled = True
            events.append(DeliveryUpdated(delivery.link, delivery.tag, disposition.state,
                                          settled))

    # ------------------------------------------------------------------ close

    def _on_close(self, channel: int, close: Close, events: list[Event]) -> None:
        if self.state is not State.CLOSE_SENT:
            self._emit(encode_frame(0, Close()))
        self._finish(events, close.error)

    def _on_unexpected(self, channel: int, performative: Any, events: list[Event]) -> None:
        raise _Protocol(errors.NOT_ALLOWED, f"unexpected {type(performative).__name__}")

    def _write_close_if_open(self, error: Error | None) -> None:
        if self.state in (State.OPEN, State.OPENED):
            self._send_open()
            self._emit(encode_frame(0, Close(error)))

    def _fail(self, events: list[Event], error: Error) -> None:
        """A protocol error: our CLOSE carries it (after our OPEN, spec 2.4.3), then done."""
        self._write_close_if_open(error)
        self._finish(events, error)

    def _finish(self, events: list[Event], error: Error | None) -> None:
        self.state = State.CLOSED
        for session in self._sessions.values():
            session.held.clear()
            session.held_bytes = 0
        self._partials.clear()
        self._partial_bytes = 0
        if not self._closed_reported:
            self._closed_reported = True
            events.append(ConnectionClosed(error))

    def _emit(self, data: bytes) -> None:
        self._out.append(data)
        self._out_bytes += len(data)

    _HANDLERS: ClassVar[dict[type, Any]] = {
        Begin: _on_begin,
        End: _on_end,
        Attach: _on_attach,
        Detach: _on_detach,
        Flow: _on_flow,
        Disposition: _on_disposition,
        Close: _on_close,
        Open: _on_unexpected,
    }


_TERMINAL = (Accepted, Rejected, Released, Modified)


def _in_range(disposition: Disposition, outstanding: dict[int, Any]) -> list[int]:
    """The outstanding delivery-ids within first..last (serial numbers, so it may wrap).

    Walks whichever is smaller, the range or what is outstanding: a hostile 0..2^32-1
    range costs no more than the deliveries actually waiting."""
    first = disposition.first
    last = first if disposition.last is None else disposition.last
    span = (last - first) % SEQUENCE_MOD + 1
    if span <= len(outstanding):
        ids = ((first + i) % SEQUENCE_MOD for i in range(span))
        return [d for d in ids if d in outstanding]
    return sorted(d for d in outstanding if (d - first) % SEQUENCE_MOD < span)
