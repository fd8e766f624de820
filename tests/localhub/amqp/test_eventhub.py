"""The Event Hub-compatible built-in endpoint with the unmodified ``azure-eventhub`` client
(async and sync ``EventHubConsumerClient``): telemetry from a Python MQTT module and a Node
AMQP module with IoT Hub's annotations, hub and partition properties, starting positions,
consumer groups, live push within credit and epoch receivers (reference E)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from azure.eventhub import EventHubConsumerClient as SyncConsumer
from azure.eventhub import TransportType
from azure.eventhub.aio import EventHubConsumerClient
from azure.iot.device import Message as DeviceMessage
from azure.iot.hub.models import Twin, TwinProperties

from tests.hubfixtures import RestClient, server_registry_manager
from tests.localhub.amqp.support import amqp_hub, node_over_amqp
from tests.localhub.mqtt_support import ensure_identity, sdk_client, watch_log
from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.store.event_log import partition_of

__all__ = ["amqp_hub"]  # the fixture
TIMEOUT = 20.0


def client_options(hub: HubServer) -> dict[str, Any]:
    """How a client reaches the local hub's endpoint: its AMQP port, trusting its CA."""
    return {
        "custom_endpoint_address": f"sb://localhost:{hub.amqp_port}",
        "transport_type": TransportType.Amqp,
        "connection_verify": str(hub.certificates.ca_cert),
    }


def consumer(hub: HubServer, group: str = "$Default", **kwargs: Any) -> EventHubConsumerClient:
    return EventHubConsumerClient.from_connection_string(
        hub.core.eventhub_connection_string(),
        consumer_group=group,
        **client_options(hub),
        **kwargs,
    )


class Stream:
    """Events a running ``receive`` got, awaited by condition."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.errors: list[Exception] = []
        self._changed = asyncio.Event()

    async def on_event(self, context: Any, event: Any) -> None:
        self.events.append((context.partition_id, event))
        self._changed.set()

    async def on_error(self, context: Any, error: Exception) -> None:
        self.errors.append(error)
        self._changed.set()

    def telemetry(self) -> list[tuple[str, Any]]:
        return [
            (p, e)
            for p, e in self.events
            if e.system_properties.get(b"iothub-message-source") == b"Telemetry"
        ]

    async def until(self, condition: Any, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def receiving(client: EventHubConsumerClient, **kwargs: Any) -> AsyncIterator[Stream]:
    stream = Stream()
    async with client:
        task = asyncio.create_task(
            client.receive(stream.on_event, on_error=stream.on_error, **kwargs)
        )
        try:
            yield stream
        finally:
            await client.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _next_millisecond() -> None:
    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == start:
        pass


async def readers(hub: HubServer, count: int) -> None:
    """Wait until ``count`` partition receivers read (a receiver from "@latest" gets
    only what comes after it attached)."""
    await poll(lambda: hub.core.eventhub.reader_count() == count)


async def poll(condition: Any) -> None:
    """Wait for a condition of the hub no event announces (checked every 20 ms)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def _send(hub: HubServer, device: str, module: str | None, body: bytes, **props: str) -> None:
    hub.core.devices.telemetry(Identity(device, module), dict(props), {}, body)
    hub.core.flush()


async def test_mqtt_module_telemetry_arrives_with_iothub_annotations(amqp_hub: HubServer):
    hub = amqp_hub
    connection_string = ensure_identity(hub.core, "sensor-1", "thermo")
    generation = hub.core.get_module("sensor-1", "thermo")["generationId"]
    async with (
        receiving(consumer(hub), starting_position="-1") as stream,
        sdk_client(
            connection_string, hub.certificates.ca_cert.read_text(), hub_proxy(hub)
        ) as module,
    ):
        await module.connect()
        message = DeviceMessage('{"temperature": 21.5}')
        message.message_id = "m-1"
        message.content_type = "application/json"
        message.content_encoding = "utf-8"
        message.custom_properties["alert"] = "no"
        await module.send_message(message)
        await stream.until(lambda: stream.telemetry())
    partition, event = stream.telemetry()[0]
    assert partition == str(partition_of("sensor-1"))
    assert event.body_as_json() == {"temperature": 21.5}
    assert event.properties == {b"alert": b"no"}
    system = event.system_properties
    assert system[b"iothub-connection-device-id"] == b"sensor-1"
    assert system[b"iothub-connection-module-id"] == b"thermo"
    assert json.loads(system[b"iothub-connection-auth-method"]) == {
        "scope": "module",
        "type": "sas",
        "issuer": "iothub",
    }
    assert system[b"iothub-connection-auth-generation-id"] == generation.encode()
    assert isinstance(system[b"iothub-enqueuedtime"], int)  # a timestamp, in ms
    assert system[b"message-id"] == b"m-1"
    assert system[b"content-type"] == b"application/json"
    assert system[b"content-encoding"] == b"utf-8"
    assert isinstance(event.sequence_number, int) and isinstance(event.offset, str)
    assert event.enqueued_time is not None and event.enqueued_time.year >= 2024


def hub_proxy(hub: HubServer) -> Any:
    from azure.iot.device import ProxyOptions

    assert hub.proxy_port is not None
    return ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=hub.proxy_port)


async def test_node_amqp_module_telemetry_and_output(amqp_hub: HubServer):
    hub = amqp_hub
    node = await node_over_amqp(hub, "amqp-dev", "amqp-mod")
    async with node, receiving(consumer(hub), starting_position="-1") as stream:
        await node.call("open")
        await node.call("send", body='{"n": 1}')
        await node.call("send_output", output="out1", body='{"n": 2}')
        await stream.until(lambda: len(stream.telemetry()) == 2)
    events = [e for _, e in stream.telemetry()]
    assert [e.body_as_json() for e in events] == [{"n": 1}, {"n": 2}]
    assert {p for p, _ in stream.telemetry()} == {str(partition_of("amqp-dev"))}
    for event in events:
        assert event.system_properties[b"iothub-connection-device-id"] == b"amqp-dev"
        assert event.system_properties[b"iothub-connection-module-id"] == b"amqp-mod"
    assert events[1].system_properties[b"iothub-outputname"] == b"out1"
    assert events[0].sequence_number < events[1].sequence_number


async def test_hub_and_partition_properties_async_and_sync(amqp_hub: HubServer):
    hub = amqp_hub
    ensure_identity(hub.core, "d1")
    _send(hub, "d1", None, b"one")
    _send(hub, "d1", None, b"two")
    async with consumer(hub) as client:
        properties = await client.get_eventhub_properties()
        assert properties["eventhub_name"] == hub.core.eventhub.name
        assert properties["partition_ids"] == ["0", "1", "2", "3"]
        partition = str(partition_of("d1"))
        details = await client.get_partition_properties(partition)
    last = hub.core.event_log.last(int(partition))
    assert last is not None and last.body == b"two"
    assert details["last_enqueued_sequence_number"] == last.sequence
    assert details["last_enqueued_offset"] == str(last.offset)
    assert details["is_empty"] is False
    empty = next(p for p in ("0", "1", "2", "3") if p != partition)

    def sync_read() -> tuple[dict, dict]:
        client = SyncConsumer.from_connection_string(
            hub.core.eventhub_connection_string(), consumer_group="$Default", **client_options(hub)
        )
        with client:
            return client.get_eventhub_properties(), client.get_partition_properties(empty)

    def sync_receive() -> list[Any]:
        client = SyncConsumer.from_connection_string(
            hub.core.eventhub_connection_string(), consumer_group="$Default", **client_options(hub)
        )
        got: list[Any] = []

        def on_event(context: Any, event: Any) -> None:
            got.append(event)
            if event.body_as_str() == "two":
                client.close()  # ends receive()

        with client:
            client.receive(on_event, partition_id=partition, starting_position="-1")
        return got

    hub_props, empty_props = await asyncio.to_thread(sync_read)
    received = await asyncio.to_thread(sync_receive)
    telemetry = [
        e for e in received if e.system_properties[b"iothub-message-source"] == b"Telemetry"
    ]
    assert [e.body_as_str() for e in telemetry] == ["one", "two"]
    assert hub_props["partition_ids"] == ["0", "1", "2", "3"]
    assert empty_props["is_empty"] is True
    assert empty_props["last_enqueued_offset"] == "-1"


async def test_starting_positions(amqp_hub: HubServer):
    hub = amqp_hub
    ensure_identity(hub.core, "d1")
    for body in (b"a", b"bb", b"ccc"):
        _next_millisecond()  # enqueued times in ms tell them apart (the time selector)
        _send(hub, "d1", None, body)
    partition = str(partition_of("d1"))
    events = hub.core.event_log.read(int(partition))
    a, b, c = events[-3:]

    async def first_body(**position: Any) -> bytes:
        async with receiving(consumer(hub), partition_id=partition, **position) as stream:
            await stream.until(lambda: stream.events)
        return stream.events[0][1].body_as_str().encode()

    assert await first_body(starting_position=b.sequence) == b"ccc"
    assert await first_body(starting_position=b.sequence, starting_position_inclusive=True) == b"bb"
    assert await first_body(starting_position=str(a.offset)) == b"bb"
    assert (
        await first_body(starting_position=str(c.offset), starting_position_inclusive=True)
        == b"ccc"
    )
    enqueued = datetime.fromtimestamp(b.enqueued_ns / 1e9, UTC)
    assert await first_body(starting_position=enqueued, starting_position_inclusive=True) == b"bb"
    # "@latest": only what comes next.
    async with receiving(consumer(hub), partition_id=partition, starting_position="@latest") as s:
        await readers(hub, 1)
        _send(hub, "d1", None, b"later")
        await s.until(lambda: s.events)
    assert [e.body_as_str() for _, e in s.events] == ["later"]


async def test_consumer_groups_are_independent_and_must_exist(amqp_hub: HubServer):
    hub = amqp_hub
    hub.core.eventhub.add_consumer_group("dashboards")
    ensure_identity(hub.core, "d1")
    _send(hub, "d1", None, b"x")
    async with (
        receiving(consumer(hub), starting_position="-1") as default,
        receiving(consumer(hub, "dashboards"), starting_position="-1") as dashboards,
    ):
        await default.until(lambda: default.telemetry())
        await dashboards.until(lambda: dashboards.telemetry())
    assert default.telemetry()[0][1].sequence_number == dashboards.telemetry()[0][1].sequence_number
    # A group that does not exist: the attach is refused, and the client hears why
    # (amqp:not-found on the detach after an attach that echoes its termini, as Azure's).
    with watch_log("twin_explorer.localhub.transports.amqp.connection") as log:
        client = consumer(hub, "nope", retry_total=0)
        async with receiving(client, partition_id="0", starting_position="-1") as refused:
            await poll(lambda: log.find("consumer group 'nope' does not exist"))
            await refused.until(lambda: refused.errors)
    assert "amqp:not-found" in str(refused.errors[0])
    assert "consumer group 'nope' does not exist" in str(refused.errors[0])
    assert hub.core.eventhub.reader_count() == 0


async def test_live_push_honours_prefetch(amqp_hub: HubServer):
    hub = amqp_hub
    ensure_identity(hub.core, "d1")
    async with receiving(consumer(hub), starting_position="@latest", prefetch=5) as stream:
        await readers(hub, 4)
        for i in range(50):
            _send(hub, "d1", None, str(i).encode())
        await stream.until(lambda: len(stream.telemetry()) == 50)
    assert [e.body_as_str() for _, e in stream.telemetry()] == [str(i) for i in range(50)]


async def test_a_higher_epoch_kicks_the_lower_one(amqp_hub: HubServer):
    hub = amqp_hub
    ensure_identity(hub.core, "d1")
    partition = str(partition_of("d1"))
    async with receiving(
        consumer(hub), partition_id=partition, starting_position="-1", owner_level=1
    ) as first:
        _send(hub, "d1", None, b"x")
        await first.until(lambda: first.events)
        async with receiving(
            consumer(hub), partition_id=partition, starting_position="-1", owner_level=2
        ) as second:
            await second.until(lambda: second.events)
            await first.until(lambda: first.errors)
            assert "higher epoch of '2'" in str(first.errors[0])
            # A lower epoch than the reader's is refused.
            async with receiving(
                consumer(hub), partition_id=partition, starting_position="-1", owner_level=1
            ) as third:
                await third.until(lambda: third.errors)
            assert "epoch '2' already exists" in str(third.errors[0])


def _notifications(stream: Stream, source: bytes) -> list[tuple[dict, Any]]:
    """(application properties as text, JSON body) of the stream's notifications."""
    found = []
    for _, event in stream.events:
        if event.system_properties.get(b"iothub-message-source") == source:
            props = {k.decode(): v.decode() for k, v in event.properties.items()}
            found.append((props, event.body_as_json()))
    return found


async def test_twin_lifecycle_and_connection_notifications(amqp_hub: HubServer):
    hub = amqp_hub
    manager = server_registry_manager(hub)
    name = hub.core.eventhub.name
    async with receiving(consumer(hub), starting_position="-1") as stream:
        device = await asyncio.to_thread(
            manager.create_device_with_sas, "n1", None, None, "enabled"
        )
        await asyncio.to_thread(manager.create_module_with_sas, "n1", "m1", None, None, None)
        twin = Twin(properties=TwinProperties(desired={"fan": "on"}), tags={"site": "a"})
        await asyncio.to_thread(manager.update_twin, "n1", twin, "*")
        await asyncio.to_thread(manager.replace_twin, "n1", Twin(tags={"site": "b"}), "*")
        key = device.authentication.symmetric_key.primary_key
        connection_string = f"HostName=localhost;DeviceId=n1;SharedAccessKey={key}"
        async with sdk_client(
            connection_string, hub.certificates.ca_cert.read_text(), hub_proxy(hub)
        ) as client:
            await client.connect()
            await client.patch_twin_reported_properties({"temp": 20})
        await asyncio.to_thread(manager.delete_module, "n1", "m1")
        await asyncio.to_thread(manager.delete_device, "n1")
        await stream.until(lambda: len(_notifications(stream, b"deviceLifecycleEvents")) == 4)
        await stream.until(lambda: len(_notifications(stream, b"deviceConnectionStateEvents")) == 2)
    lifecycle = _notifications(stream, b"deviceLifecycleEvents")
    assert [p["opType"] for p, _ in lifecycle] == [
        "createDeviceIdentity",
        "createModuleIdentity",
        "deleteModuleIdentity",
        "deleteDeviceIdentity",
    ]
    created, body = lifecycle[1]
    assert created["hubName"] == name and created["deviceId"] == "n1"
    assert created["moduleId"] == "m1"
    assert created["iothub-message-schema"] == "deviceLifecycleNotification"
    assert created["operationTimestamp"]
    assert body["moduleId"] == "m1" and "properties" in body
    twins = _notifications(stream, b"twinChangeEvents")
    assert [p["opType"] for p, _ in twins] == ["updateTwin", "replaceTwin", "updateTwin"]
    assert all(p["iothub-message-schema"] == "twinChangeNotification" for p, _ in twins)
    (_, update), (_, replace), (_, reported) = twins
    assert update["tags"] == {"site": "a"}
    assert update["properties"]["desired"]["fan"] == "on"
    assert replace["tags"] == {"site": "b"} and replace["version"] > update["version"]
    assert reported["properties"]["reported"]["temp"] == 20
    assert reported["properties"]["reported"]["$version"] >= 2
    connection = _notifications(stream, b"deviceConnectionStateEvents")
    assert [p["opType"] for p, _ in connection] == ["deviceConnected", "deviceDisconnected"]
    assert connection[0][1]["sequenceNumber"] < connection[1][1]["sequenceNumber"]


async def test_routes_choose_the_sources_the_endpoint_carries(amqp_hub: HubServer):
    hub = amqp_hub
    rest = RestClient.for_server(hub, "service")
    try:
        status, body = await rest.json("PUT", "/_localhub/eventhub/routes", json_body=["twin"])
        assert status == 200 and body["routes"] == ["twin"]
        status, body = await rest.json("PUT", "/_localhub/eventhub/routes", json_body=["nope"])
        assert status == 400 and "Unknown route 'nope'" in body["Message"]
    finally:
        await rest.close()
    manager = server_registry_manager(hub)
    await asyncio.to_thread(manager.create_device_with_sas, "r1", None, None, "enabled")
    _send(hub, "r1", None, b"not routed")
    twin = Twin(properties=TwinProperties(desired={"on": True}))
    await asyncio.to_thread(manager.update_twin, "r1", twin, "*")
    _send(hub, "r1", None, b"not routed either")
    twin = Twin(properties=TwinProperties(desired={"on": False}))
    await asyncio.to_thread(manager.update_twin, "r1", twin, "*")
    async with receiving(consumer(hub), starting_position="-1") as stream:
        # The second twin change is the partition's last event: once it is here, all
        # that came before it in the partition has been delivered (or skipped).
        await stream.until(lambda: len(stream.events) >= 2)
    assert len(stream.events) == 2
    sources = {e.system_properties[b"iothub-message-source"] for _, e in stream.events}
    assert sources == {b"twinChangeEvents"}
    # The hub still keeps the telemetry for its own view.
    assert [m["body"] for m in hub.core.telemetry("r1")] == [b"not routed", b"not routed either"]


async def test_a_slow_consumer_does_not_slow_ingestion(amqp_hub: HubServer):
    hub = amqp_hub
    connection_string = ensure_identity(hub.core, "busy")
    release = asyncio.Event()
    stream = Stream()

    async def stuck(context: Any, event: Any) -> None:
        await release.wait()  # a consumer that stops reading after its first event
        await stream.on_event(context, event)

    count = 300
    partition = str(partition_of("busy"))
    async with consumer(hub) as client:
        task = asyncio.create_task(
            client.receive(stuck, partition_id=partition, starting_position="-1", prefetch=10)
        )
        await readers(hub, 1)
        async with sdk_client(
            connection_string, hub.certificates.ca_cert.read_text(), hub_proxy(hub)
        ) as device:
            await device.connect()
            async with asyncio.timeout(TIMEOUT):  # every send is acknowledged meanwhile
                for i in range(count):
                    await device.send_message(str(i))
        assert hub.core.telemetry_count("busy") == count
        assert stream.events == []
        release.set()  # the consumer reads again: nothing was lost, nothing dropped it
        await stream.until(lambda: len(stream.telemetry()) == count)
        await client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [e.body_as_str() for _, e in stream.telemetry()] == [str(i) for i in range(count)]
