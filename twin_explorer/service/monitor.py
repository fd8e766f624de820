"""The built-in endpoint's stream as plain records: what ``twin-explorer monitor`` prints
and what an events view shows. Works against any Event Hub-compatible endpoint (an
Azure IoT Hub's or the local hub's) through ``azure-eventhub``'s async client.

- :class:`EndpointTarget` says how to reach an endpoint: the connection string plus, for
  the local hub, its AMQP port and CA (``custom_endpoint_address`` with
  ``TransportType.Amqp``, ``connection_verify``). Its repr never shows the key.
- :class:`EventFilter`: device and module globs, sources.
- :func:`event_record`: one received ``EventData`` as a JSON-ready dict.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# What --source names -> IoT Hub's iothub-message-source.
SOURCES = {
    "telemetry": "Telemetry",
    "twin": "twinChangeEvents",
    "lifecycle": "deviceLifecycleEvents",
    "connection": "deviceConnectionStateEvents",
}
# The keyring service that holds a saved connection's Event Hub-compatible connection
# string (username: the connection's name), next to its service connection string.
LOCAL_AMQP_PORT = 5671


class MonitorError(Exception):
    """A plain-words problem with what was asked (bad time, no local hub...)."""


@dataclass(frozen=True)
class EndpointTarget:
    connection_string: str = field(repr=False)
    endpoint: str | None = None  # custom_endpoint_address, e.g. sb://localhost:5671
    ca_cert: str | None = None

    def client_options(self) -> dict[str, Any]:
        from azure.eventhub import TransportType

        options: dict[str, Any] = {}
        if self.endpoint is not None:
            options["custom_endpoint_address"] = self.endpoint
            options["transport_type"] = TransportType.Amqp
        if self.ca_cert is not None:
            options["connection_verify"] = self.ca_cert
        return options


def local_target(data_dir: Path, port: int = LOCAL_AMQP_PORT) -> EndpointTarget:
    """The local hub in ``data_dir``: its ``service`` policy key (read-only), its CA."""
    database = data_dir / "hub.db"
    ca_cert = data_dir / "tls" / "ca.pem"
    if not database.is_file() or not ca_cert.is_file():
        raise MonitorError(f"No local hub in {data_dir}: start one with 'twin-explorer hub'.")
    conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT primary_key FROM policies WHERE name = 'service'").fetchone()
    finally:
        conn.close()
    if row is None:
        raise MonitorError(f"The local hub in {data_dir} has no 'service' policy.")
    name = "localhost"
    connection_string = (
        f"Endpoint=sb://{name}/;SharedAccessKeyName=service;SharedAccessKey={row[0]};"
        f"EntityPath={name}"
    )
    return EndpointTarget(connection_string, f"sb://localhost:{port}", str(ca_cert))


def starting_position(text: str) -> str | datetime:
    """``now``, ``start`` or an ISO 8601 time as azure-eventhub's starting_position."""
    lowered = text.strip().lower()
    if lowered == "now":
        return "@latest"
    if lowered in ("start", "beginning"):
        return "-1"
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MonitorError(
            f"--from {text!r}: use now, start or a time like 2024-05-01T12:00:00Z."
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _decoded(mapping: dict[Any, Any] | None) -> dict[str, Any]:
    return {str(_text(k)): _text(v) for k, v in (mapping or {}).items()}


def _body(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class EventFilter:
    device: str | None = None  # glob
    module: str | None = None  # glob; given: only module events
    sources: frozenset[str] = frozenset()  # iothub-message-source values; empty: all

    def accepts(self, record: dict[str, Any]) -> bool:
        if self.sources and record["source"] not in self.sources:
            return False
        if self.device and not fnmatch.fnmatchcase(record["deviceId"] or "", self.device):
            return False
        return not self.module or fnmatch.fnmatchcase(record["moduleId"] or "", self.module)


def event_record(partition: str, event: Any) -> dict[str, Any]:
    """A received ``EventData`` as JSON-ready data (bodies: JSON, text or base64)."""
    system = _decoded(event.system_properties)
    properties = _decoded(event.properties)
    return {
        "partition": partition,
        "sequenceNumber": event.sequence_number,
        "offset": event.offset,
        "enqueuedTime": event.enqueued_time.isoformat() if event.enqueued_time else None,
        "source": system.get("iothub-message-source"),
        "deviceId": system.get("iothub-connection-device-id") or properties.get("deviceId"),
        "moduleId": system.get("iothub-connection-module-id") or properties.get("moduleId"),
        "properties": properties,
        "systemProperties": {k: v for k, v in system.items() if not k.startswith("x-opt-")},
        "body": _body(b"".join(event.body) if not isinstance(event.body, bytes) else event.body),
    }


async def stream(
    target: EndpointTarget,
    consumer_group: str,
    position: str | datetime,
    accept: EventFilter,
    emit: Callable[[dict[str, Any]], Awaitable[bool] | bool],
) -> None:
    """Receive every partition from ``position`` and ``emit`` each accepted record until
    ``emit`` returns False or the task is cancelled. Errors the client cannot recover
    from are raised as MonitorError in plain words."""
    import asyncio

    from azure.eventhub.aio import EventHubConsumerClient

    client = EventHubConsumerClient.from_connection_string(
        target.connection_string, consumer_group=consumer_group, **target.client_options()
    )
    done = asyncio.Event()
    failure: list[BaseException] = []

    async def on_event(context: Any, event: Any) -> None:
        if event is None or done.is_set():
            return
        record = event_record(context.partition_id, event)
        if accept.accepts(record):
            keep = emit(record)
            if not isinstance(keep, bool):
                keep = await keep
            if not keep:
                done.set()

    async def on_error(context: Any, error: BaseException) -> None:
        if context is None:  # not a partition's: the whole receive failed
            failure.append(error)
            done.set()

    async with client:
        task = asyncio.create_task(
            client.receive(on_event, on_error=on_error, starting_position=position, prefetch=300)
        )
        waiter = asyncio.create_task(done.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await client.close()
            task.cancel()
            results = await asyncio.gather(task, return_exceptions=True)
    error = failure[0] if failure else results[0]
    if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
        raise MonitorError(f"The event stream failed: {error}") from None
