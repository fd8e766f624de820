"""The unmodified azure-iot-hub SDK against an in-process local hub: the service half of
the module-twin tutorial, etags, errors, paging and statistics.

The hub runs on the test's event loop, so every blocking SDK call goes through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest
from azure.iot.hub.models import CloudToDeviceMethod, QuerySpecification, Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import server_registry_manager


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def failure(fn: Callable[..., Any], *args: Any) -> HttpOperationError:
    with pytest.raises(HttpOperationError) as info:
        await call(fn, *args)
    return info.value


@pytest.fixture
def rm(hub_server):
    return server_registry_manager(hub_server)


async def test_module_twin_tutorial_flow(rm):
    # Create the device and module with hub-assigned keys (B.5: empty symmetricKey).
    device = await call(rm.create_device_with_sas, "myFirstDevice", None, None, "enabled")
    keys = device.authentication.symmetric_key
    assert len(base64.b64decode(keys.primary_key)) == 32
    assert keys.primary_key != keys.secondary_key
    assert device.status == "enabled" and device.etag and device.generation_id

    again = await failure(rm.create_device_with_sas, "myFirstDevice", None, None, "enabled")
    assert again.response.status_code == 409
    assert again.response.headers["iothub-errorcode"] == "DeviceAlreadyExists"
    fetched = await call(rm.get_device, "myFirstDevice")
    assert fetched.authentication.symmetric_key.primary_key == keys.primary_key

    module = await call(
        rm.create_module_with_sas, "myFirstDevice", "myFirstModule", None, None, None
    )
    assert module.module_id == "myFirstModule" and module.device_id == "myFirstDevice"
    assert len(base64.b64decode(module.authentication.symmetric_key.primary_key)) == 32
    again = await failure(
        rm.create_module_with_sas, "myFirstDevice", "myFirstModule", None, None, None
    )
    assert again.response.status_code == 409
    assert again.response.headers["iothub-errorcode"] == "ModuleAlreadyExistsOnDevice"
    fetched_module = await call(rm.get_module, "myFirstDevice", "myFirstModule")
    assert fetched_module.generation_id == module.generation_id
    assert [m.module_id for m in await call(rm.get_modules, "myFirstDevice")] == ["myFirstModule"]

    # Module twin: read, patch with the etag, replace.
    twin = await call(rm.get_module_twin, "myFirstDevice", "myFirstModule")
    assert twin.module_id == "myFirstModule" and twin.etag
    assert twin.properties.desired["$version"] == 1
    patch = Twin(properties=TwinProperties(desired={"telemetryInterval": 122}))
    updated = await call(rm.update_module_twin, "myFirstDevice", "myFirstModule", patch, twin.etag)
    assert updated.properties.desired["telemetryInterval"] == 122
    assert updated.properties.desired["$version"] == 2
    assert updated.etag != twin.etag

    stale = await failure(rm.update_module_twin, "myFirstDevice", "myFirstModule", patch, twin.etag)
    assert stale.response.status_code == 412
    assert stale.response.headers["iothub-errorcode"] == "PreconditionFailed"

    replacement = Twin(tags={"site": "lab"}, properties=TwinProperties(desired={"mode": "eco"}))
    replaced = await call(
        rm.replace_module_twin, "myFirstDevice", "myFirstModule", replacement, updated.etag
    )
    assert replaced.tags == {"site": "lab"}
    assert "telemetryInterval" not in replaced.properties.desired
    assert replaced.properties.desired["mode"] == "eco"

    # Read-modify-write with the whole Twin object, as the SDK samples do (B.4, C.3).
    current = await call(rm.get_module_twin, "myFirstDevice", "myFirstModule")
    current.properties.desired["mode"] = "turbo"
    rewritten = await call(
        rm.update_module_twin, "myFirstDevice", "myFirstModule", current, current.etag
    )
    assert rewritten.properties.desired["mode"] == "turbo"

    # Delete answers 204 (the SDK accepts nothing else) and the ids are gone.
    assert await call(rm.delete_module, "myFirstDevice", "myFirstModule") is None
    gone = await failure(rm.get_module, "myFirstDevice", "myFirstModule")
    assert gone.response.status_code == 404
    assert gone.response.headers["iothub-errorcode"] == "ModuleNotFound"
    assert await call(rm.delete_device, "myFirstDevice") is None
    gone = await failure(rm.get_device, "myFirstDevice")
    assert gone.response.status_code == 404
    assert gone.response.headers["iothub-errorcode"] == "DeviceNotFound"


async def test_device_twin_update_replace_and_stale_etag(rm):
    await call(rm.create_device_with_sas, "d1", None, None, "enabled")
    twin = await call(rm.get_twin, "d1")
    patched = await call(
        rm.update_twin, "d1", {"tags": {"a": 1}, "properties": {"desired": {"x": 1}}}, twin.etag
    )
    assert patched.tags == {"a": 1} and patched.properties.desired["x"] == 1
    # No etag means If-Match "*" (B.3): always applies.
    wildcard = await call(rm.update_twin, "d1", {"properties": {"desired": {"x": None}}})
    assert "x" not in wildcard.properties.desired
    stale = await failure(rm.replace_twin, "d1", Twin(tags={"b": 2}), twin.etag)
    assert stale.response.status_code == 412
    replaced = await call(rm.replace_twin, "d1", Twin(tags={"b": 2}), wildcard.etag)
    assert replaced.tags == {"b": 2}


@pytest.mark.parametrize(
    ("method", "args", "code"),
    [
        ("get_device", ("nobody",), "DeviceNotFound"),
        ("get_twin", ("nobody",), "DeviceNotFound"),
        ("get_modules", ("nobody",), "DeviceNotFound"),
        ("get_module", ("known", "nomodule"), "ModuleNotFound"),
        ("get_module_twin", ("known", "nomodule"), "ModuleNotFound"),
        ("delete_device", ("nobody",), "DeviceNotFound"),
        ("delete_module", ("known", "nomodule"), "ModuleNotFound"),
        ("update_twin", ("nobody", {"tags": {"a": 1}}), "DeviceNotFound"),
    ],
)
async def test_unknown_ids_are_404(rm, method, args, code):
    await call(rm.create_device_with_sas, "known", None, None, "enabled")
    error = await failure(getattr(rm, method), *args)
    assert error.response.status_code == 404
    assert error.response.headers["iothub-errorcode"] == code
    assert f"ErrorCode:{code};" in error.response.json()["Message"]


async def test_ids_with_reserved_characters_round_trip(rm):
    # C.6 allows these punctuation characters; the SDK percent-encodes them (B.3).
    device_id = "dev-1:x.+%_#*?!(),=@;$'"
    module_id = "mod%2F#?"
    created = await call(rm.create_device_with_sas, device_id, None, None, "enabled")
    assert created.device_id == device_id
    assert (await call(rm.get_device, device_id)).device_id == device_id
    await call(rm.create_module_with_sas, device_id, module_id, None, None, None)
    twin = await call(rm.update_module_twin, device_id, module_id, {"tags": {"k": "v"}})
    assert (twin.device_id, twin.module_id, twin.tags) == (device_id, module_id, {"k": "v"})
    assert [m.module_id for m in await call(rm.get_modules, device_id)] == [module_id]
    await call(rm.delete_device, device_id)
    assert (await failure(rm.get_device, device_id)).response.status_code == 404


async def test_query_pages_through_250_devices(hub_server, rm):
    for index in range(250):
        hub_server.core.put_device(f"dev{index:03d}", {"deviceId": f"dev{index:03d}"}, None)
    spec = QuerySpecification(query="SELECT * FROM devices")
    pages, token = [], None
    while True:
        result = await call(rm.query_iot_hub, spec, token, 100)
        pages.append(result)
        token = result.continuation_token
        if token is None:
            break
    assert [len(page.items) for page in pages] == [100, 100, 50]
    assert all(page.type == "twin" for page in pages)
    ids = [twin.device_id for page in pages for twin in page.items]
    assert ids == [f"dev{index:03d}" for index in range(250)]

    # A plain dict spec and a filter work too (B.4).
    result = await call(
        rm.query_iot_hub, {"query": "SELECT * FROM devices WHERE deviceId = 'dev007'"}
    )
    assert [twin.device_id for twin in result.items] == ["dev007"]
    assert result.continuation_token is None


async def test_statistics(rm):
    await call(rm.create_device_with_sas, "on", None, None, "enabled")
    await call(rm.create_device_with_sas, "off", None, None, "disabled")
    registry = await call(rm.get_device_registry_statistics)
    assert (registry.total_device_count, registry.enabled_device_count) == (2, 1)
    assert registry.disabled_device_count == 1
    service = await call(rm.get_service_statistics)
    assert service.connected_device_count == 0


async def test_invoking_a_method_on_an_offline_module_is_404103(hub_server):
    # No MQTT here, so nothing can be online: the hub answers as for an offline device.
    rm = server_registry_manager(hub_server)
    await call(rm.create_device_with_sas, "d1", None, None, "enabled")
    await call(rm.create_module_with_sas, "d1", "m1", None, None, None)
    method = CloudToDeviceMethod(method_name="reboot", payload={"delay": 1})
    error = await failure(rm.invoke_device_module_method, "d1", "m1", method)
    assert error.response.status_code == 404
    assert error.response.headers["iothub-errorcode"] == "DeviceNotOnline"
    assert "404103" in error.response.text
    missing = await failure(rm.invoke_device_module_method, "d1", "nomodule", method)
    assert missing.response.headers["iothub-errorcode"] == "ModuleNotFound"
