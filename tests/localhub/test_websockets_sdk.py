"""The unmodified Python device SDK over MQTT over WebSockets (``websockets=True``).

The SDK dials ``wss://<HostName>:443/$iothub/websocket``, fixed; through its supported
``ProxyOptions`` it asks the hub's CONNECT proxy for ``localhost:443``, which leads to the
REST port, where the WebSocket endpoint hands the stream to the MQTT engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.iot.device import Message, MethodResponse
from azure.iot.hub.models import CloudToDeviceMethod, Twin, TwinProperties

from tests.hubfixtures import server_registry_manager
from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    Inbox,
    MqttHub,
    ensure_identity,
    mqtt_hub,
    set_handler,
    watch_log,
)

__all__ = ["mqtt_hub"]  # the fixture


async def _answer_methods(module: Any, request: Any) -> None:
    payload = {"method": request.name, "got": request.payload}
    await module.send_method_response(
        MethodResponse.create_from_method_request(request, 200, payload)
    )


async def test_module_twin_tutorial_over_websockets(mqtt_hub: MqttHub) -> None:
    """connect, get twin, desired patch received, reported patch, method answered, telemetry."""
    connection_string = ensure_identity(mqtt_hub.core, "wsdev", "wsmod")
    manager = server_registry_manager(mqtt_hub.server)
    with watch_log(*SERVER_LOGS, "twin_explorer.localhub.runtime.proxy") as log:
        async with mqtt_hub.client(connection_string, websockets=True) as module:
            patches = Inbox()
            await module.connect()
            assert await log.wait_for_async("wsdev/wsmod connected", "over wss")
            # The SDK asked the proxy for localhost:443; the proxy led it to the REST port.
            rest = f"('127.0.0.1', {mqtt_hub.server.rest_port})"
            assert log.find("tunnel", "-> localhost:443 ->", rest)

            twin = await module.get_twin()
            assert twin == {"desired": {"$version": 1}, "reported": {"$version": 1}}

            await set_handler(module, "on_twin_desired_properties_patch_received", patches)
            update = Twin(properties=TwinProperties(desired={"telemetryInterval": 5}))
            await asyncio.to_thread(manager.update_module_twin, "wsdev", "wsmod", update, "*")
            assert await patches.get() == {"telemetryInterval": 5, "$version": 2}

            await module.patch_twin_reported_properties({"telemetryInterval": 5})
            reported = mqtt_hub.core.get_twin("wsdev", "wsmod")["properties"]["reported"]
            assert reported["telemetryInterval"] == 5

            async def on_method(request: Any) -> None:
                await _answer_methods(module, request)

            await set_handler(module, "on_method_request_received", on_method)
            method = CloudToDeviceMethod(method_name="reboot", payload={"in": 1})
            result = await asyncio.to_thread(
                manager.invoke_device_module_method, "wsdev", "wsmod", method
            )
            assert (result.status, result.payload) == (200, {"method": "reboot", "got": {"in": 1}})

            await module.send_message(Message('{"t": 21}'))  # returns on the hub's PUBACK
            assert [m["body"] for m in mqtt_hub.core.telemetry("wsdev", "wsmod")] == [b'{"t": 21}']
