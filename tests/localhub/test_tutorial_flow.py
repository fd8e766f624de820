"""The module-twin tutorial end to end against a ``twin-explorer hub`` process.

Unmodified SDKs on both sides: azure-iot-hub over REST (blocking, so in threads) and the
aio azure-iot-device module client over MQTT through the hub's CONNECT proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from azure.iot.device import ProxyOptions
from azure.iot.device.exceptions import CredentialError
from azure.iot.hub.models import QuerySpecification, Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import HubProcess
from tests.localhub.mqtt_support import Inbox, sdk_client, set_handler
from twin_explorer.localhub.core.hub import HubCore

DEVICE, MODULE = "tutorial-device", "tutorial-module"


def proxy_of(hub: HubProcess) -> ProxyOptions:
    return ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=hub.proxy_port)


def create_identities(hub: HubProcess) -> str:
    """Device and module with hub-assigned keys, as the tutorial's service app does it."""
    manager = hub.registry_manager()
    manager.create_device_with_sas(DEVICE, None, None, "enabled")
    manager.create_module_with_sas(DEVICE, MODULE, None, None, None)
    with pytest.raises(HttpOperationError) as info:  # running the setup twice
        manager.create_module_with_sas(DEVICE, MODULE, None, None, None)
    assert info.value.response.status_code == 409
    module = manager.get_module(DEVICE, MODULE)
    key = module.authentication.symmetric_key.primary_key
    assert key
    return f"HostName={hub.hostname};DeviceId={DEVICE};ModuleId={MODULE};SharedAccessKey={key}"


async def service(hub: HubProcess, method: str, *args: Any) -> Any:
    """One registry-manager call, off the loop (the device SDK needs the loop meanwhile)."""
    return await asyncio.to_thread(lambda: getattr(hub.registry_manager(), method)(*args))


@contextlib.asynccontextmanager
async def tutorial_module(
    hub: HubProcess,
) -> AsyncIterator[tuple[Any, Inbox, Inbox, str]]:
    """The tutorial's module, connected and listening: (client, states, desired patches,
    its connection string)."""
    connection_string = await asyncio.to_thread(create_identities, hub)
    ca_pem = await asyncio.to_thread(Path(hub.ca_cert).read_text)
    async with sdk_client(connection_string, ca_pem, proxy_of(hub)) as module:
        states, patches = Inbox(), Inbox()
        await set_handler(module, "on_connection_state_change", lambda: states(module.connected))
        await module.connect()
        assert await states.get() is True
        await set_handler(module, "on_twin_desired_properties_patch_received", patches)
        yield module, states, patches, connection_string


async def test_module_twin_tutorial(local_hub: HubProcess) -> None:
    async with tutorial_module(local_hub) as (module, states, patches, connection_string):
        twin = await module.get_twin()
        assert twin == {"desired": {"$version": 1}, "reported": {"$version": 1}}

        # The service patches desired with the twin's etag; the module gets the patch.
        service_twin = await service(local_hub, "get_module_twin", DEVICE, MODULE)
        update = Twin(properties=TwinProperties(desired={"telemetryInterval": 5}))
        await service(local_hub, "update_module_twin", DEVICE, MODULE, update, service_twin.etag)
        patch = await patches.get()
        assert patch == {"telemetryInterval": 5, "$version": 2}

        # The module reports; the service reads it back.
        await module.patch_twin_reported_properties(
            {"telemetryInterval": patch["telemetryInterval"], "status": "ok"}
        )
        service_twin = await service(local_hub, "get_module_twin", DEVICE, MODULE)
        reported = service_twin.properties.reported
        assert (reported["telemetryInterval"], reported["status"]) == (5, "ok")

        # Replace: the module receives the new desired document as a whole.
        replacement = Twin(tags={"site": "lab"}, properties=TwinProperties(desired={"mode": "eco"}))
        await service(
            local_hub, "replace_module_twin", DEVICE, MODULE, replacement, service_twin.etag
        )
        patch = await patches.get()
        assert patch["mode"] == "eco" and patch["$version"] == 3
        assert patch.get("telemetryInterval") is None

        query = QuerySpecification(
            query="SELECT * FROM devices.modules WHERE properties.reported.status = 'ok'"
        )
        result = await service(local_hub, "query_iot_hub", query)
        assert [(t.device_id, t.module_id) for t in result.items] == [(DEVICE, MODULE)]
        assert result.items[0].tags == {"site": "lab"}

        # Deleting the module drops its connection, and connecting again is refused.
        await service(local_hub, "delete_module", DEVICE, MODULE)
        assert await states.get() is False
        # A client of its own, without the SDK's background reconnects: paho reports a
        # refused CONNACK twice (on_connect, then on_disconnect with the same code), and
        # a background attempt's second report can land on an explicit connect() as
        # ConnectionFailedError. Alone, the refusal reads as what it is.
        ca_pem = await asyncio.to_thread(Path(local_hub.ca_cert).read_text)
        async with sdk_client(
            connection_string, ca_pem, proxy_of(local_hub), connection_retry=False
        ) as again:
            with pytest.raises(CredentialError):
                await again.connect()


async def test_subscriptions_survive_a_hub_restart(start_local_hub) -> None:
    """A restarted hub still delivers to a module that never subscribes again.

    Through a proxy the SDK does not reconnect by itself across a restart: a refused proxy
    connection is a ProtocolProxyError, which azure-iot-device 2.14.0 treats as final
    (only direct connections get ConnectionFailedError and retries). So the module
    connects again explicitly, as an app would, and sends no SUBSCRIBE when it does.
    """
    hub: HubProcess = start_local_hub()
    async with tutorial_module(hub) as (module, states, patches, _):
        # Same proxy port after the restart: the client dials the one it was given.
        hub.extra_args = ["--proxy-port", str(hub.proxy_port)]
        await asyncio.to_thread(hub.stop)
        assert await states.get() is False
        # Desired changes while the hub is down, straight in its store.
        with HubCore.open(hub.data_dir) as core:
            core.patch_twin(DEVICE, MODULE, {"properties": {"desired": {"offline": 1}}}, None)
        await asyncio.to_thread(hub.start)

        await module.connect()
        # The SDK's twin GET after connecting brings what changed meanwhile (A.8)...
        assert await patches.get() == {"offline": 1, "$version": 2}
        # ...and the restored session delivers live patches without a new SUBSCRIBE.
        update = Twin(properties=TwinProperties(desired={"online": 2}))
        await service(hub, "update_module_twin", DEVICE, MODULE, update, "*")
        assert await patches.get() == {"online": 2, "$version": 3}
