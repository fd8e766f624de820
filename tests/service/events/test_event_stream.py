"""The event stream with the real local hub's Event Hub-compatible endpoint, read by
``azure.eventhub.aio`` on the loop: telemetry and twin changes decoded, batches, recording,
and plain words for a wrong key and a missing consumer group."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.hubfixtures import service_for
from tests.localhub.amqp.support import amqp_hub
from tests.localhub.mqtt_support import ensure_identity
from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.events.consumer import Endpoint, StartAt, State, StreamError
from twin_explorer.service.events.record import Encoding, Source
from twin_explorer.service.events.stream import EventStream

__all__ = ["amqp_hub"]
WITHIN = 20.0


def endpoint(hub: HubServer, connection_string: str | None = None) -> Endpoint:
    return Endpoint(
        connection_string or hub.core.eventhub_connection_string(),
        f"sb://localhost:{hub.amqp_port}",
        str(hub.certificates.ca_cert),
    )


def send(hub: HubServer, device: str, module: str | None, body: bytes, **props: str) -> None:
    hub.core.devices.telemetry(Identity(device, module), dict(props), {}, body)
    hub.core.flush()


async def until(condition, within: float = WITHIN) -> None:
    """Wait for a condition (the stream's batches and the hub's readers announce
    nothing a test can await; checked every 20 ms)."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_telemetry_arrives_decoded_in_batches(amqp_hub: HubServer, tmp_path: Path):
    hub = amqp_hub
    ensure_identity(hub.core, "sensor-1")
    stream = EventStream(lambda: endpoint(hub))
    shown: list[int] = []
    stream.batches.subscribe(lambda batch: shown.append(len(batch)))
    stream.record_to(tmp_path / "events.jsonl")
    await stream.start()
    try:
        assert stream.status.value.state is State.RECEIVING
        await until(lambda: hub.core.eventhub.reader_count() >= 1)
        for i in range(50):
            send(hub, "sensor-1", None, json.dumps({"temperature": 20 + i}).encode(), unit="C")
        await until(lambda: len(stream.log) >= 50)
    finally:
        await stream.aclose()
    telemetry = [r for r in stream.log.visible() if r.source is Source.TELEMETRY]
    assert [r.json()["temperature"] for r in telemetry] == [20 + i for i in range(50)]
    first = telemetry[0]
    assert first.identity == "sensor-1"
    assert first.properties == {"unit": "C"}
    assert first.system["iothub-connection-device-id"] == "sensor-1"
    assert first.decoded() == (Encoding.JSON, '{\n  "temperature": 20\n}')
    assert len(shown) < 50  # the views were told per batch, not per event
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    recorded = [json.loads(line) for line in lines if '"telemetry"' in line]
    assert [r["body"]["temperature"] for r in recorded] == [20 + i for i in range(50)]


async def test_twin_changes_and_lifecycle_come_with_their_source(amqp_hub: HubServer):
    hub = amqp_hub
    stream = EventStream(lambda: endpoint(hub))
    await stream.start()
    try:
        await until(lambda: hub.core.eventhub.reader_count() >= 1)
        service = service_for(hub)  # another service client, through the service SDK
        try:
            await service.create_device("pump-7")
            await service.create_module("pump-7", "ctl")
            desired = {"properties": {"desired": {"speed": 3}}}
            await service.patch_twin("pump-7", "ctl", desired, None)
        finally:
            await service.aclose()

        def twin_changes():
            return [r for r in stream.log.visible() if r.source is Source.TWIN]

        await until(lambda: twin_changes())
    finally:
        await stream.aclose()
    sources = {r.source for r in stream.log.visible()}
    assert Source.LIFECYCLE in sources
    change = twin_changes()[0]
    assert change.identity == "pump-7/ctl"
    assert change.operation
    desired = change.json()["properties"]["desired"]
    assert desired["speed"] == 3 and "$version" in desired  # the change, as IoT Hub says it


async def test_beginning_reads_what_came_before(amqp_hub: HubServer):
    hub = amqp_hub
    ensure_identity(hub.core, "early")
    send(hub, "early", None, b"first")
    stream = EventStream(lambda: endpoint(hub))
    stream.start_at = StartAt.BEGINNING
    await stream.start()
    try:
        await until(lambda: any(r.body == b"first" for r in stream.log.visible()))
    finally:
        await stream.aclose()
    record = next(r for r in stream.log.visible() if r.body == b"first")
    assert record.decoded() == (Encoding.TEXT, "first")


async def test_wrong_key_is_said_in_plain_words_without_the_key(amqp_hub: HubServer):
    hub = amqp_hub
    good = hub.core.eventhub_connection_string()
    key = good.split("SharedAccessKey=")[1].split(";")[0]
    wrong_key = "A" * len(key)
    stream = EventStream(lambda: endpoint(hub, good.replace(key, wrong_key)))
    with pytest.raises(StreamError) as caught:
        await stream.start()
    await stream.aclose()
    text = str(caught.value)
    assert "refused" in text and "Built-in endpoints" in text
    assert wrong_key not in text and key not in text
    assert stream.status.value.state is State.FAILED


async def test_a_connection_string_that_is_not_one(amqp_hub: HubServer):
    stream = EventStream(lambda: Endpoint("HostName=nothing-here"))
    with pytest.raises(StreamError, match="not valid"):
        await stream.start()
    await stream.aclose()


async def test_two_starts_at_once_leave_one_reader(amqp_hub: HubServer):
    """Restart pressed while the window's own start is still connecting: the second
    start replaces the first, so every event arrives once."""
    hub = amqp_hub
    ensure_identity(hub.core, "once")
    stream = EventStream(lambda: endpoint(hub))
    try:
        await asyncio.gather(stream.start(), stream.start())
        partitions = hub.core.eventhub.log.partitions
        await until(lambda: hub.core.eventhub.reader_count() >= partitions)
        send(hub, "once", None, b"one")
        await until(lambda: any(r.body == b"one" for r in stream.log.visible()))
        send(hub, "once", None, b"two")  # (the first reader, had it leaked, would be done)
        await until(lambda: any(r.body == b"two" for r in stream.log.visible()))
        assert hub.core.eventhub.reader_count() == partitions
    finally:
        await stream.aclose()
    assert [r.body for r in stream.log.visible() if r.identity == "once"] == [b"one", b"two"]
