"""The Event Hub-compatible built-in endpoint: what IoT Hub's ``messages/events`` serves.

The entity is named after the hub; its partitions are the event log's (IoT Hub partitions
by device id); consumer groups are ``$Default`` plus the ones created (kept in ``meta``).
This module holds the endpoint's semantics, free of any protocol: the hub and partition
properties, where a receiver's selector filter starts it, and each logged event as the
endpoint delivers it (IoT Hub's annotations and the original message). The AMQP transport
only puts them on the wire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twin_explorer.localhub.core.events import (
    Connected,
    HubEvent,
    IdentityCreated,
    IdentityDeleted,
    TwinChanged,
)
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.store.event_log import EventLog, LoggedEvent
from twin_explorer.localhub.store.sqlite import Store

DEFAULT_GROUP = "$Default"
MAX_GROUPS = 20  # IoT Hub's standard tiers allow 20 consumer groups per hub
_GROUPS_KEY = "eventhub.consumer_groups"
_ROUTES_KEY = "eventhub.routes"
# Route names (the CLI's and REST's) -> the event kinds they carry.
ROUTES = {
    "telemetry": "telemetry",
    "twin": "twinChangeEvents",
    "lifecycle": "deviceLifecycleEvents",
    "connection": "deviceConnectionStateEvents",
}
_CREATED_KEY = "eventhub.created_ms"
# Event Hubs' rule for names: letters, digits, periods, hyphens and underscores, starting
# and ending with a letter or digit, up to 50 characters.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$")
_SELECTOR = re.compile(
    r"^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$",
    re.IGNORECASE,
)

# Event log kinds (core/events.py) as the routing sources IoT Hub names.
SOURCES = {
    "telemetry": "Telemetry",
    "twinChangeEvents": "twinChangeEvents",
    "deviceLifecycleEvents": "deviceLifecycleEvents",
    "deviceConnectionStateEvents": "deviceConnectionStateEvents",
}

# System properties the transports record (the MQTT property bag's names) -> the AMQP
# message properties IoT Hub gives events.
MESSAGE_PROPERTIES = {
    "$.mid": "message_id",
    "$.cid": "correlation_id",
    "$.ct": "content_type",
    "$.ce": "content_encoding",
    "$.uid": "user_id",
}


_SCHEMAS = {
    "twinChangeEvents": "twinChangeNotification",
    "deviceLifecycleEvents": "deviceLifecycleNotification",
    "deviceConnectionStateEvents": "deviceConnectionStateNotification",
}


def _op_type(event: HubEvent) -> str:
    what = "Module" if event.module_id else "Device"
    if isinstance(event, TwinChanged):
        return event.op_type
    if isinstance(event, IdentityCreated):
        return f"create{what}Identity"
    if isinstance(event, IdentityDeleted):
        return f"delete{what}Identity"
    return "deviceConnected" if isinstance(event, Connected) else "deviceDisconnected"


def notification(
    event: HubEvent, hub_name: str, twin: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """(application properties, system properties, body) of a twin change, lifecycle or
    connection state notification, as IoT Hub routes them. ``twin``: the identity's twin,
    the body of a creation."""
    properties: dict[str, Any] = {"hubName": hub_name, "deviceId": event.device_id}
    if event.module_id:
        properties["moduleId"] = event.module_id
    properties.update(
        {
            "operationTimestamp": event.time,
            "iothub-message-schema": _SCHEMAS[event.kind],
            "opType": _op_type(event),
        }
    )
    body: dict[str, Any]
    if isinstance(event, TwinChanged):
        body = event.notification or {
            "version": event.version,
            "properties": {event.section: event.patch},
        }
    elif isinstance(event, IdentityCreated):
        body = twin
    elif isinstance(event, IdentityDeleted):
        body = {
            "deviceId": event.device_id,
            **({"moduleId": event.module_id} if event.module_id else {}),
        }
    else:  # connection state: an ordering key, as IoT Hub's
        ns = int(_iso_time(event.time, 0).timestamp() * 1e9)
        body = {"sequenceNumber": f"{ns:064X}"}
    system = {
        "iothub-enqueuedtime": event.time,
        "iothub-message-source": event.kind,
        "$.ct": "application/json",
        "$.ce": "utf-8",
    }
    return properties, system, json.dumps(body, separators=(",", ":")).encode()


def sender_annotations(identity: dict[str, Any], module: bool) -> dict[str, str]:
    """``iothub-connection-auth-method`` and ``-auth-generation-id`` for a sender, from its
    registry entry (reference E.5)."""
    kind = (identity.get("authentication") or {}).get("type", "sas")
    method = {
        "scope": "module" if module else "device",
        "type": "sas" if kind == "sas" else "x509",
        "issuer": "iothub",
    }
    return {
        "iothub-connection-auth-method": json.dumps(method, separators=(",", ":")),
        "iothub-connection-auth-generation-id": str(identity.get("generationId", "")),
    }


def connection_string(host: str, policy: str, key: str, entity: str) -> str:
    """The built-in endpoint's Event Hub-compatible connection string (reference E.1)."""
    return (
        f"Endpoint=sb://{host}/;SharedAccessKeyName={policy};SharedAccessKey={key};"
        f"EntityPath={entity}"
    )


class SelectorError(ValueError):
    """A receiver's filter this endpoint does not understand."""


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    """One event as the endpoint delivers it.

    ``annotations`` keep their Python types for the transport to map: str, int (a long),
    datetime (a timestamp). ``message_properties`` are AMQP property names.
    """

    partition: int
    sequence: int
    annotations: dict[str, Any]
    message_properties: dict[str, Any]
    application_properties: dict[str, Any]
    body: bytes


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def _iso_time(text: Any, fallback_ns: int) -> datetime:
    if isinstance(text, str):
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    return _time(fallback_ns)


def endpoint_event(event: LoggedEvent) -> EndpointEvent:
    """A logged event with IoT Hub's annotations (reference E.5)."""
    system = event.system_properties
    annotations: dict[str, Any] = {"iothub-connection-device-id": event.device_id}
    if event.module_id:
        annotations["iothub-connection-module-id"] = event.module_id
    for key in ("iothub-connection-auth-method", "iothub-connection-auth-generation-id"):
        if system.get(key):
            annotations[key] = system[key]
    annotations["iothub-enqueuedtime"] = _iso_time(
        system.get("iothub-enqueuedtime"), event.enqueued_ns
    )
    annotations["iothub-message-source"] = system.get(
        "iothub-message-source", SOURCES.get(event.kind, event.kind)
    )
    if system.get("$.on"):
        annotations["iothub-outputname"] = system["$.on"]
    annotations["x-opt-sequence-number"] = event.sequence
    annotations["x-opt-offset"] = str(event.offset)
    annotations["x-opt-enqueued-time"] = _time(event.enqueued_ns)
    message = {name: system[key] for key, name in MESSAGE_PROPERTIES.items() if system.get(key)}
    return EndpointEvent(
        event.partition, event.sequence, annotations, message, dict(event.properties), event.body
    )


@dataclass(eq=False)
class ReceiverClaim:
    """A receiver reading one partition for one consumer group; ``kick(why)`` ends it."""

    group: str
    partition: int
    epoch: int | None
    kick: Callable[[str], None]


class EpochError(HubError):
    """A receiver refused because one with a higher epoch reads the partition."""


class EventHubEndpoint:
    """Hub and partition properties, consumer groups and reads (see module doc)."""

    def __init__(self, store: Store, log: EventLog, name: str) -> None:
        self._store = store
        self.log = log
        self.name = name
        created = store.get_meta(_CREATED_KEY)
        if created is None:
            created = str(int(datetime.now(UTC).timestamp() * 1000))
            with store.transaction():
                store.set_meta(_CREATED_KEY, created)
        self.created_ms = int(created)
        self._claims: dict[tuple[str, int], list[ReceiverClaim]] = {}
        text = store.get_meta(_ROUTES_KEY)
        self._routed = (
            frozenset(ROUTES[r] for r in json.loads(text)) if text else frozenset(ROUTES.values())
        )

    # -- entity ---------------------------------------------------------------------------

    @property
    def partition_ids(self) -> list[str]:
        return [str(p) for p in range(self.log.partitions)]

    def partition(self, text: str) -> int:
        """The partition an address names; 404 for none."""
        if text.isdigit() and int(text) < self.log.partitions:
            return int(text)
        raise HubError(
            404, "NotFound", 404001, f"The event hub {self.name!r} has no partition {text!r}."
        )

    def hub_properties(self) -> dict[str, Any]:
        """``com.microsoft:eventhub`` READ (reference E.3)."""
        return {
            "name": self.name,
            "type": "com.microsoft:eventhub",
            "created_at": _time(self.created_ms * 1_000_000),
            "partition_count": self.log.partitions,
            "partition_ids": self.partition_ids,
        }

    def partition_properties(self, partition: int) -> dict[str, Any]:
        """``com.microsoft:partition`` READ: the last offset is a string (reference E.3)."""
        first, following = self.log.bounds(partition)
        last = self.log.last(partition)
        return {
            "name": self.name,
            "type": "com.microsoft:partition",
            "partition": str(partition),
            "begin_sequence_number": first if last is not None else following,
            "last_enqueued_sequence_number": following - 1 if last is not None else -1,
            "last_enqueued_offset": str(last.offset) if last is not None else "-1",
            "last_enqueued_time_utc": _time(last.enqueued_ns if last is not None else 0),
            "is_partition_empty": last is None,
        }

    # -- routes ---------------------------------------------------------------------------

    @property
    def routes(self) -> list[str]:
        """The sources routed to the endpoint (IoT Hub's routes; default all four)."""
        return [name for name, kind in ROUTES.items() if kind in self._routed]

    def set_routes(self, names: list[str]) -> None:
        unknown = [name for name in names if name not in ROUTES]
        if unknown:
            raise HubError(
                400,
                "ArgumentInvalid",
                400004,
                f"Unknown route {unknown[0]!r}: choose from {', '.join(ROUTES)}.",
            )
        with self._store.transaction():
            self._store.set_meta(_ROUTES_KEY, json.dumps(sorted(set(names))))
        self._routed = frozenset(ROUTES[name] for name in names)

    def routed(self, kind: str) -> bool:
        """Does the endpoint carry events of this kind? (Telemetry is logged either way:
        the hub's own telemetry view reads it.)"""
        return kind in self._routed

    # -- consumer groups ------------------------------------------------------------------

    def consumer_groups(self) -> list[str]:
        text = self._store.get_meta(_GROUPS_KEY)
        return [DEFAULT_GROUP, *(json.loads(text) if text else [])]

    def has_consumer_group(self, name: str) -> bool:
        wanted = name.lower()  # Event Hubs names are case-insensitive
        return any(group.lower() == wanted for group in self.consumer_groups())

    def add_consumer_group(self, name: str) -> None:
        if not _GROUP_NAME.match(name):
            raise HubError(
                400,
                "ArgumentInvalid",
                400004,
                f"{name!r} is not a valid consumer group name: use 1 to 50 letters, digits, "
                "periods, hyphens and underscores, starting and ending with a letter or digit.",
            )
        if self.has_consumer_group(name):
            raise HubError(409, "Conflict", 409001, f"The consumer group {name!r} exists already.")
        groups = self.consumer_groups()
        if len(groups) >= MAX_GROUPS:
            raise HubError(
                403, "QuotaExceeded", 403002, f"The hub has {MAX_GROUPS} consumer groups, the most."
            )
        self._save_groups([*groups[1:], name])

    def remove_consumer_group(self, name: str) -> None:
        if name.lower() == DEFAULT_GROUP.lower():
            raise HubError(
                400, "ArgumentInvalid", 400004, "The $Default consumer group cannot be removed."
            )
        groups = self.consumer_groups()[1:]
        kept = [group for group in groups if group.lower() != name.lower()]
        if len(kept) == len(groups):
            raise HubError(404, "NotFound", 404001, f"The hub has no consumer group {name!r}.")
        self._save_groups(kept)

    def _save_groups(self, groups: list[str]) -> None:
        with self._store.transaction():
            self._store.set_meta(_GROUPS_KEY, json.dumps(groups))

    # -- epoch receivers ------------------------------------------------------------------

    def claim(
        self, group: str, partition: int, epoch: int | None, kick: Callable[[str], None]
    ) -> ReceiverClaim:
        """Register a receiver (Event Hubs' epoch rules): one with an epoch ends every
        receiver of the group's partition with a lower or equal epoch or none, and is
        refused (EpochError) while a higher epoch reads; one without an epoch is refused
        while any epoch receiver reads."""
        key = (group.lower(), partition)
        claims = self._claims.setdefault(key, [])
        epochs = [c.epoch for c in claims if c.epoch is not None]
        if epochs and (epoch is None or max(epochs) > epoch):
            mine = "without an epoch" if epoch is None else f"with epoch '{epoch}'"
            raise EpochError(
                409,
                "Conflict",
                409002,
                f"Receiver {mine} cannot be created for partition {partition} of consumer "
                f"group {group!r}: a receiver with epoch '{max(epochs)}' already exists.",
            )
        claim = ReceiverClaim(group, partition, epoch, kick)
        if epoch is not None:
            kicked, claims[:] = list(claims), []
            for old in kicked:
                old_epoch = "no epoch" if old.epoch is None else f"epoch '{old.epoch}'"
                old.kick(
                    f"New receiver with higher epoch of '{epoch}' is created hence current "
                    f"receiver with {old_epoch} is getting disconnected. If you are recreating "
                    "the receiver, make sure a higher epoch is used."
                )
        claims.append(claim)
        return claim

    def reader_count(self, group: str | None = None) -> int:
        """Receivers reading now, of one consumer group or all."""
        return sum(
            len(claims)
            for (name, _), claims in self._claims.items()
            if group is None or name == group.lower()
        )

    def release(self, claim: ReceiverClaim) -> None:
        key = (claim.group.lower(), claim.partition)
        claims = self._claims.get(key, [])
        if claim in claims:
            claims.remove(claim)
        if not claims:
            self._claims.pop(key, None)

    # -- reading --------------------------------------------------------------------------

    def start(self, partition: int, selector: str | None) -> int:
        """The first sequence number a receiver with this selector filter gets
        (reference E.4); no filter starts at the end, as Event Hubs' default (@latest)."""
        first, following = self.log.bounds(partition)
        if selector is None:
            return following
        match = _SELECTOR.match(selector)
        if match is None:
            raise SelectorError(f"Unsupported filter {selector[:200]!r}.")
        field, operator, text = match.group(1).lower(), match.group(2), match.group(3)
        inclusive = operator == ">="
        try:
            if field == "offset":
                if text == "-1":
                    return first
                if text == "@latest":
                    return following
                offset = int(text)
                return max(first, self.log.first_from_offset(partition, offset + (not inclusive)))
            if field == "sequence-number":
                sequence = int(text) + (not inclusive)
                return min(max(first, sequence), following)
            ms = int(text) + (not inclusive)
            return max(first, self.log.first_from_time(partition, ms * 1_000_000))
        except ValueError:
            raise SelectorError(f"{text[:100]!r} is not a {field}.") from None

    def read(
        self, partition: int, from_sequence: int, limit: int
    ) -> tuple[list[EndpointEvent], int]:
        """Routed events from ``from_sequence`` on, and the sequence number to read next."""
        events = self.log.read(partition, from_sequence, limit)
        following = events[-1].sequence + 1 if events else from_sequence
        return [endpoint_event(e) for e in events if self.routed(e.kind)], following

    def on_written(self, callback: Callable[[list[LoggedEvent]], None]) -> Callable[[], None]:
        """``callback(events)`` for each commit of new events (see EventLog.on_written)."""
        return self.log.on_written(callback)
