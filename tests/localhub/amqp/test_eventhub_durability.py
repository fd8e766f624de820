"""Events survive a restart and a SIGKILL of the hub process; sequence numbers and
offsets never repeat, read back with the unmodified azure-eventhub client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from azure.eventhub import TransportType
from azure.eventhub.aio import EventHubConsumerClient
from azure.iot.device import IoTHubDeviceClient, ProxyOptions

from tests.hubfixtures import HubProcess
from twin_explorer.service.local_hub import LocalHubInfo

TIMEOUT = 30.0


def _send(hub: HubProcess, connection_string: str, bodies: list[str]) -> None:
    """Telemetry from a device over MQTT; each send returns once the hub acknowledged it."""
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.connection_string_without_port(connection_string),
        server_verification_cert=Path(hub.ca_cert).read_text(),
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", hub.proxy_port),
    )
    try:
        client.connect()
        for body in bodies:
            client.send_message(body)
    finally:
        client.shutdown()


async def _read_all(info: dict[str, Any], count: int) -> list[Any]:
    hub = LocalHubInfo.from_json(info)
    assert hub.eventhub_connection_string is not None
    client = EventHubConsumerClient.from_connection_string(
        hub.eventhub_connection_string,
        consumer_group="$Default",
        custom_endpoint_address=hub.eventhub_endpoint,
        transport_type=TransportType.Amqp,
        connection_verify=hub.ca_cert,
    )
    events: list[Any] = []
    done = asyncio.Event()

    async def on_event(context: Any, event: Any) -> None:
        if event.system_properties.get(b"iothub-message-source") == b"Telemetry":
            events.append(event)
            if len(events) == count:
                done.set()

    async with client:
        task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
        try:
            async with asyncio.timeout(TIMEOUT):
                await done.wait()
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return events


def test_events_survive_restart_and_sigkill_without_repeating_positions(start_local_hub):
    hub = start_local_hub(extra_args=["--amqp-port", "0"])
    assert hub.info["eventhub_name"] == "localhost"
    assert hub.info["eventhub_connection_string"].startswith(
        "Endpoint=sb://localhost/;SharedAccessKeyName=service;SharedAccessKey="
    )
    assert hub.info["eventhub_connection_string"].endswith(";EntityPath=localhost")
    manager = hub.registry_manager()
    device = manager.create_device_with_sas("d1", None, None, "enabled")
    key = device.authentication.symmetric_key.primary_key
    connection_string = f"HostName={hub.hostname};DeviceId=d1;SharedAccessKey={key}"
    _send(hub, connection_string, ["a1", "a2"])
    hub.restart()
    _send(hub, connection_string, ["b1"])
    hub.kill()  # SIGKILL: no shutdown, nothing flushed on the way out
    hub.start()
    _send(hub, connection_string, ["c1", "c2"])
    events = asyncio.run(_read_all(hub.info, 5))
    assert [e.body_as_str() for e in events] == ["a1", "a2", "b1", "c1", "c2"]
    sequences = [e.sequence_number for e in events]
    offsets = [int(e.offset) for e in events]
    assert sequences == sorted(set(sequences))
    assert offsets == sorted(set(offsets))
