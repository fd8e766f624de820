"""The Event Hub-compatible endpoint's AMQP nodes on one connection (reference E).

- ``$management``: READ of ``com.microsoft:eventhub`` and ``com.microsoft:partition``; the
  request comes on the client's sender, the reply (correlation-id = the request's
  message-id, with its type) on the client's receiver, the body an amqp-value map.
- ``/<hub>/ConsumerGroups/<group>/Partitions/<p>``: a partition receiver. Its selector
  filter says where it starts; events go out settled within the link credit (the client's
  prefetch), from the event log while it is behind and as the log writes them once it has
  caught up. ``com.microsoft:epoch`` follows Event Hubs' rules (core/eventhub.py).

Both need a token with ServiceConnect put on ``$cbs`` first. What IoT Hub decides lives in
``core/eventhub.py``; this module only puts it on the wire.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from twin_explorer.connection.redact import clip
from twin_explorer.localhub.core.eventhub import (
    EndpointEvent,
    EpochError,
    ReceiverClaim,
    SelectorError,
    endpoint_event,
)
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.protocols.amqp import (
    Data,
    Error,
    Int,
    Long,
    Message,
    Properties,
    Symbol,
    Timestamp,
    Value,
)
from twin_explorer.localhub.protocols.amqp import errors as conditions
from twin_explorer.localhub.transports.amqp.addresses import path_of

if TYPE_CHECKING:
    from twin_explorer.localhub.core.eventhub import EventHubEndpoint
    from twin_explorer.localhub.store.event_log import LoggedEvent
    from twin_explorer.localhub.transports.amqp.connection import AmqpConnection

logger = logging.getLogger(__name__)

MANAGEMENT = "$management"
SELECTOR = Symbol("apache.org:selector-filter:string")
EPOCH = Symbol("com.microsoft:epoch")
READ_BATCH = 100  # events read from the log at a time for a receiver that is behind
LIVE_BUFFER = 1000  # written events a caught-up receiver holds before it reads the log


@dataclass(frozen=True, slots=True)
class PartitionAddress:
    hub: str
    group: str
    partition: str


def parse(address: str | None) -> PartitionAddress | str | None:
    """``MANAGEMENT``, a :class:`PartitionAddress`, or None for other nodes."""
    if not address:
        return None
    path = path_of(address)
    if path.strip("/").lower() == MANAGEMENT:
        return MANAGEMENT
    parts = [p for p in path.split("/") if p]
    if (
        len(parts) == 5
        and parts[1].lower() == "consumergroups"
        and parts[3].lower() == "partitions"
    ):
        return PartitionAddress(unquote(parts[0]), unquote(parts[2]), unquote(parts[4]))
    return None


def _wire(value: Any) -> Any:
    """Core values as AMQP types: int -> long, datetime -> timestamp."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return Long(value)
    if isinstance(value, datetime):
        return Timestamp(int(value.timestamp() * 1000))
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def event_message(event: EndpointEvent) -> Message:
    """An event as IoT Hub's built-in endpoint sends it (reference E.5)."""
    props = event.message_properties
    properties = None
    if props:
        properties = Properties(
            message_id=props.get("message_id"),
            user_id=props["user_id"].encode() if props.get("user_id") else None,
            correlation_id=props.get("correlation_id"),
            content_type=props.get("content_type"),
            content_encoding=props.get("content_encoding"),
        )
    return Message(
        message_annotations={Symbol(k): _wire(v) for k, v in event.annotations.items()},
        properties=properties,
        application_properties=dict(event.application_properties) or None,
        body=[Data(event.body)],
    )


def _error(condition: Symbol, description: str) -> Error:
    return Error(condition, description, None)


@dataclass(eq=False)
class _Receiver:
    link: Any
    partition: int
    next_sequence: int
    claim: ReceiverClaim | None = None
    # Written events waiting for credit while the receiver is caught up; None: it is
    # behind (or fell behind) and reads the log.
    live: deque[LoggedEvent] | None = field(default_factory=deque)


class EventHubLinks:
    """The endpoint's links on one AMQP connection (see module doc)."""

    def __init__(self, connection: AmqpConnection) -> None:
        self.connection = connection
        self.endpoint: EventHubEndpoint = connection.core.eventhub
        self._receivers: dict[Any, _Receiver] = {}
        self._management: list[Any] = []  # client receivers of $management replies
        self._unsubscribe: Any = None
        self._pumping = False  # reading the log flushes it, which calls _written again
        self._again = False

    def handles(self, link: Any) -> bool:
        return link in self._receivers or link in self._management

    # -- attach ---------------------------------------------------------------------------

    def attach(self, link: Any, node: PartitionAddress | str) -> Error | None:
        """Accept a link to one of the endpoint's nodes; the error to refuse it with."""
        sender = link.role == "sender"
        if node == MANAGEMENT:
            if not sender:
                self._management.append(link)
            return None
        assert isinstance(node, PartitionAddress)
        if sender:
            return _error(conditions.NOT_ALLOWED, "Partitions of the event hub are read only.")
        endpoint = self.endpoint
        if node.hub.lower() != endpoint.name.lower():
            return _error(
                conditions.NOT_FOUND,
                f"The messaging entity '{clip(node.hub, 100)}' could not be found; this hub's "
                f"Event Hub-compatible name is '{endpoint.name}'.",
            )
        if not endpoint.has_consumer_group(node.group):
            return _error(
                conditions.NOT_FOUND,
                f"The consumer group '{clip(node.group, 100)}' does not exist in "
                f"'{endpoint.name}'. Create it with: twin-explorer hub consumer-groups add NAME",
            )
        try:
            partition = endpoint.partition(node.partition)
            start = endpoint.start(partition, _selector(link))
        except HubError as error:
            return _error(conditions.NOT_FOUND, error.message)
        except SelectorError as error:
            return _error(conditions.NOT_IMPLEMENTED, str(error))
        receiver = _Receiver(link, partition, start, live=None)
        properties = getattr(link, "properties", None) or {}
        epoch = properties.get(EPOCH, properties.get("com.microsoft:epoch"))
        try:
            receiver.claim = endpoint.claim(
                node.group,
                partition,
                None if epoch is None else int(epoch),
                lambda why: self._kick(link, why),
            )
        except EpochError as error:
            return _error(conditions.LINK_STOLEN, error.message)
        self._receivers[link] = receiver
        if self._unsubscribe is None:
            self._unsubscribe = endpoint.on_written(self._written)
        return None

    def _kick(self, link: Any, why: str) -> None:
        receiver = self._receivers.pop(link, None)
        if receiver is None:
            return
        logger.info(
            "%s: receiver of partition %d ended: %s", self.connection.name, receiver.partition, why
        )
        self.connection.conn.detach(link, _error(conditions.LINK_STOLEN, why))
        self.connection.flush_output()

    # -- sending events -------------------------------------------------------------------

    def credit(self, link: Any) -> None:
        if link in self._receivers and not self._pumping:
            self._pump_all()

    def _written(self, events: list[LoggedEvent]) -> None:
        """New events are written: receivers that had caught up get them."""
        if not self.connection.open or not self._receivers:
            return
        if not self.connection.on_loop_thread():
            self.connection.loop.call_soon_threadsafe(self._written, events)
            return
        for receiver in self._receivers.values():
            live = receiver.live
            if live is None:
                continue  # behind: it reads the log
            for event in events:
                if event.partition != receiver.partition:
                    continue
                expected = receiver.next_sequence + len(live)
                if event.sequence > expected or len(live) >= LIVE_BUFFER:
                    receiver.live = None  # a gap, or too slow to keep up in memory
                    break
                if event.sequence == expected:
                    live.append(event)
        if self._pumping:  # a read in a pump flushed the log: that pump carries on
            self._again = True
            return
        self._pump_all()

    def _pump_all(self) -> None:
        self._pumping = True
        try:
            self._again = True
            while self._again:
                self._again = False
                for receiver in list(self._receivers.values()):
                    if receiver.link.credit > 0:
                        self._pump(receiver)
        finally:
            self._pumping = False
        self.connection.flush_output()

    def _pump(self, receiver: _Receiver) -> None:
        """Send what the receiver's credit allows, from memory or the log."""
        link, conn = receiver.link, self.connection.conn
        while link.credit > 0 and self.connection.open and link in self._receivers:
            if self.connection.output_full():
                self.connection.when_drained(self._pump_all)
                return
            live = receiver.live
            if live is not None:
                if not live:
                    return
                if not self.endpoint.routed(live[0].kind):
                    receiver.next_sequence = live.popleft().sequence + 1
                    continue
                event = endpoint_event(live[0])
            else:
                batch, following = self.endpoint.read(
                    receiver.partition, receiver.next_sequence, min(link.credit, READ_BATCH)
                )
                if following == receiver.next_sequence:
                    receiver.live = deque()  # caught up: follow the log as it writes
                    return
                if not self._send_batch(receiver, batch):
                    return
                receiver.next_sequence = following
                continue
            if conn.send(link, event_message(event), settled=True) is None:
                return
            live.popleft()
            receiver.next_sequence = event.sequence + 1

    def _send_batch(self, receiver: _Receiver, batch: list[EndpointEvent]) -> bool:
        for event in batch:
            if self.connection.conn.send(receiver.link, event_message(event), settled=True) is None:
                return False
            receiver.next_sequence = event.sequence + 1
        return True

    # -- $management ----------------------------------------------------------------------

    def management(self, message: Message) -> None:
        """Answer a READ on the connection's $management receiver."""
        app = message.application_properties or {}
        status, description, body = self._read(
            str(app.get("operation", "")),
            str(app.get("type", "")),
            str(app.get("name", "")),
            app.get("partition"),
        )
        reply_to = message.properties.reply_to if message.properties else None
        links = [
            link for link in self._management if reply_to is None or link.address == reply_to
        ] or self._management
        if not links:
            return
        correlation = message.properties.message_id if message.properties else None
        reply = Message(
            properties=Properties(correlation_id=correlation),
            application_properties={
                "status-code": Int(status),
                "status-description": description,
            },
            body=Value({k: _wire(v) for k, v in body.items()}),
        )
        self.connection.push(links[0], reply)

    def _read(
        self, operation: str, kind: str, name: str, partition: Any
    ) -> tuple[int, str, dict[str, Any]]:
        endpoint = self.endpoint
        if operation.upper() != "READ":
            return 400, f"Unsupported operation {clip(operation, 40)!r}.", {}
        if name.lower() != endpoint.name.lower():
            return 404, f"The messaging entity '{clip(name, 100)}' could not be found.", {}
        if kind == "com.microsoft:eventhub":
            return 200, "OK", endpoint.hub_properties()
        if kind == "com.microsoft:partition":
            try:
                return 200, "OK", endpoint.partition_properties(endpoint.partition(str(partition)))
            except HubError as error:
                return 404, error.message, {}
        return 400, f"Unsupported type {clip(kind, 60)!r}.", {}

    # -- ending ---------------------------------------------------------------------------

    def detached(self, link: Any) -> None:
        receiver = self._receivers.pop(link, None)
        if receiver is not None and receiver.claim is not None:
            self.endpoint.release(receiver.claim)
        if link in self._management:
            self._management.remove(link)

    def close(self) -> None:
        for link in list(self._receivers):
            self.detached(link)
        self._management.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


def _selector(link: Any) -> str | None:
    source = link.source
    filters = (source.filter if source is not None else None) or {}
    for key, value in filters.items():
        if str(key) == SELECTOR:
            text = getattr(value, "value", value)
            return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return None
