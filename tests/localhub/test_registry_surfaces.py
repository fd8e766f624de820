"""The registry surfaces the Python service SDK (azure-iot-hub) calls beyond single
identities: listing devices with ``top``, bulk registry operations and device scopes.

The hub runs on the test's event loop, so every blocking SDK call goes through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from azure.iot.hub.models import (
    AuthenticationMechanism,
    ExportImportDevice,
    PropertyContainer,
    SymmetricKey,
)
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import RestClient, assert_error, server_registry_manager


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


@pytest.fixture
def rm(hub_server):
    return server_registry_manager(hub_server)


async def test_get_devices_with_and_without_top(rm, hub_server) -> None:
    for device_id in ("d3", "d1", "d2"):
        hub_server.core.put_device(device_id, {}, None)
    devices = await call(rm.get_devices)
    assert [device.device_id for device in devices] == ["d1", "d2", "d3"]
    assert all(device.etag and device.authentication.type == "sas" for device in devices)
    assert [device.device_id for device in await call(rm.get_devices, 2)] == ["d1", "d2"]
    # Out of 1..1000 is taken as 1000 (REST API "Devices - Get Devices"), not refused.
    for outside in (0, 5000):
        assert len(await call(rm.get_devices, outside)) == 3


# -- bulk registry operations (POST /devices) ----------------------------------------------


def _key(seed: int) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


def _sas(seed: int) -> AuthenticationMechanism:
    return AuthenticationMechanism(
        type="sas", symmetric_key=SymmetricKey(primary_key=_key(seed), secondary_key=_key(seed + 1))
    )


async def test_bulk_create_with_keys_and_initial_twin(rm, hub_server) -> None:
    devices = [
        ExportImportDevice(id="b1", import_mode="create", authentication=_sas(1)),
        ExportImportDevice(id="b2", import_mode="create", status="disabled"),
        ExportImportDevice(
            id="b3",
            import_mode="create",
            tags={"site": "lab"},
            properties=PropertyContainer(desired={"interval": 5}),
        ),
    ]
    result = await call(rm.bulk_create_or_update_devices, devices)
    assert result.is_successful is True and result.errors == [] and result.warnings == []
    b1 = await call(rm.get_device, "b1")
    assert b1.authentication.symmetric_key.primary_key == _key(1)
    assert (await call(rm.get_device, "b2")).status == "disabled"
    twin = await call(rm.get_twin, "b3")
    assert twin.tags == {"site": "lab"} and twin.properties.desired["interval"] == 5


async def test_bulk_mixed_operations_report_each_failure(rm, hub_server) -> None:
    core = hub_server.core
    for device_id in ("exists", "upd", "stale", "gone"):
        core.put_device(device_id, {}, None)
    stale_etag = core.get_device("stale")["etag"]
    core.put_device("stale", {"status": "disabled"}, "*")  # the etag moves on
    devices = [
        ExportImportDevice(id="exists", import_mode="create"),
        ExportImportDevice(id="new", import_mode="create"),
        ExportImportDevice(id="upd", import_mode="update", status="disabled"),
        ExportImportDevice(id="missing", import_mode="update"),
        ExportImportDevice(id="stale", import_mode="updateIfMatchETag", e_tag=stale_etag),
        ExportImportDevice(id="gone", import_mode="delete"),
        ExportImportDevice(id="never", import_mode="delete"),
    ]
    result = await call(rm.bulk_create_or_update_devices, devices)  # 400: accepted
    assert result.is_successful is False
    failed = {(error.device_id, error.error_code) for error in result.errors}
    assert failed == {
        ("exists", "DeviceAlreadyExists"),
        ("missing", "DeviceNotFound"),
        ("stale", "PreconditionFailed"),
        ("never", "DeviceNotFound"),
    }
    assert all(error.error_status for error in result.errors)
    # The entries that could be applied were.
    assert core.get_device("new")["deviceId"] == "new"
    assert core.get_device("upd")["status"] == "disabled"
    assert core.get_device("stale")["status"] == "disabled"
    ids = [device.device_id for device in await call(rm.get_devices)]
    assert "gone" not in ids and "missing" not in ids and "never" not in ids


async def test_bulk_if_match_modes(rm, hub_server) -> None:
    core = hub_server.core
    core.put_device("u", {}, None)
    core.put_device("d", {}, None)
    twin_etag = core.get_twin("u", None)["etag"]
    devices = [
        ExportImportDevice(
            id="u",
            import_mode="updateIfMatchETag",
            e_tag=core.get_device("u")["etag"],
            status="disabled",
        ),
        ExportImportDevice(
            id="d", import_mode="deleteIfMatchETag", e_tag=core.get_device("d")["etag"]
        ),
    ]
    assert (await call(rm.bulk_create_or_update_devices, devices)).is_successful is True
    assert core.get_device("u")["status"] == "disabled"
    assert [d["deviceId"] for d in core.list_devices()] == ["u"]
    twin_update = [
        ExportImportDevice(
            id="u", import_mode="updateTwinIfMatchETag", twin_etag=twin_etag, tags={"a": 1}
        )
    ]
    assert (await call(rm.bulk_create_or_update_devices, twin_update)).is_successful is True
    assert core.get_twin("u", None)["tags"] == {"a": 1}
    again = await call(rm.bulk_create_or_update_devices, twin_update)  # the etag moved on
    assert [(e.device_id, e.error_code) for e in again.errors] == [("u", "PreconditionFailed")]


async def test_bulk_takes_at_most_100_devices(rm, hub_server) -> None:
    hundred = [ExportImportDevice(id=f"n{i:03}", import_mode="create") for i in range(100)]
    assert (await call(rm.bulk_create_or_update_devices, hundred)).is_successful is True
    assert len(hub_server.core.list_devices()) == 100
    too_many = [ExportImportDevice(id=f"m{i:03}", import_mode="create") for i in range(101)]
    with pytest.raises(HttpOperationError) as info:
        await call(rm.bulk_create_or_update_devices, too_many)
    assert info.value.response.status_code == 413
    assert info.value.response.headers["iothub-errorcode"] == "TooManyDevices"
    assert len(hub_server.core.list_devices()) == 100


async def test_bulk_with_a_device_twice_applies_nothing(rm, hub_server) -> None:
    devices = [
        ExportImportDevice(id="twice", import_mode="create"),
        ExportImportDevice(id="once", import_mode="create"),
        ExportImportDevice(id="twice", import_mode="delete"),
    ]
    result = await call(rm.bulk_create_or_update_devices, devices)
    assert result.is_successful is False
    assert [(e.device_id, e.error_code) for e in result.errors] == [
        ("twice", "DeviceDefinedMultipleTimes")
    ]
    assert hub_server.core.list_devices() == []


# -- the bulk wire format, raw ------------------------------------------------------------


async def test_bulk_wire_names_match_without_case(hub_rest, hub_server) -> None:
    """The Node SDK sends importMode "Update" and the device's "etag" (not "eTag")."""
    hub_server.core.put_device("n1", {}, None)
    etag = hub_server.core.get_device("n1")["etag"]
    body = [
        {"id": "n1", "importMode": "UpdateIfMatchETag", "etag": etag, "STATUS": "disabled"},
        {"ID": "n2", "IMPORTMODE": "CREATE"},
    ]
    status, headers, raw = await hub_rest.request("POST", "/devices", json_body=body)
    assert status == 200, raw
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(raw) == {"isSuccessful": True, "errors": [], "warnings": []}
    assert hub_server.core.get_device("n1")["status"] == "disabled"
    assert hub_server.core.get_device("n2")["deviceId"] == "n2"


async def test_bulk_wire_failed_entries(hub_rest, hub_server) -> None:
    body = [
        "not an object",
        {"importMode": "create"},
        {"id": "bad/id", "importMode": "create"},
        {"id": "ok", "importMode": "createSometimes"},
        {"id": "ok2", "importMode": "updateIfMatchETag"},
        {"id": "mod", "moduleId": "m", "importMode": "create"},
        # The identity is valid, its initial twin not: neither may stay.
        {"id": "half", "importMode": "create", "tags": 5},
        {"id": "fine", "importMode": "create"},
    ]
    status, headers, raw = await hub_rest.request("POST", "/devices", json_body=body)
    assert status == 400
    assert headers["iothub-errorcode"] == "BulkRegistryOperationFailure"
    result = json.loads(raw)
    assert result["isSuccessful"] is False and result["warnings"] == []
    assert [(e["deviceId"], e["errorCode"]) for e in result["errors"]] == [
        (None, "ArgumentInvalid"),
        (None, "ArgumentInvalid"),
        ("bad/id", "ArgumentInvalid"),
        ("ok", "ArgumentInvalid"),
        ("ok2", "ArgumentInvalid"),
        ("mod", "ArgumentInvalid"),
        ("half", "ArgumentInvalid"),
    ]
    assert set(result["errors"][0]) == {
        "deviceId",
        "errorCode",
        "errorStatus",
        "moduleId",
        "operation",
    }
    assert "eTag" in result["errors"][4]["errorStatus"]
    assert result["errors"][4]["operation"] == "updateIfMatchETag"
    assert [d["deviceId"] for d in hub_server.core.list_devices()] == ["fine"]


async def test_bulk_wire_requests_that_are_no_batch(hub_rest) -> None:
    for body, words in (({"id": "x"}, "JSON array"), ([], "no devices")):
        response = await hub_rest.request("POST", "/devices", json_body=body)
        await assert_error(response, 400, "ArgumentInvalid", *words.split())
    too_many = [{"id": f"d{i}", "importMode": "create"} for i in range(101)]
    response = await hub_rest.request("POST", "/devices", json_body=too_many)
    await assert_error(response, 413, "TooManyDevices", "101")


async def test_bulk_needs_registry_write(hub_server) -> None:
    reader = RestClient.for_server(hub_server, "registryRead")
    try:
        response = await reader.request(
            "POST", "/devices", json_body=[{"id": "x", "importMode": "create"}]
        )
    finally:
        await reader.close()
    await assert_error(response, 401, "IotHubUnauthorizedAccess")
    assert hub_server.core.list_devices() == []


# -- device scopes -------------------------------------------------------------------------


async def _scope_failure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(HttpOperationError) as info:
        await asyncio.to_thread(lambda: fn(*args, **kwargs))
    response = info.value.response
    assert response.status_code == 400, response.text
    assert response.headers["iothub-errorcode"] == "InvalidDeviceScope"
    return json.loads(response.text)["Message"]


async def test_leaf_device_joins_an_edge_device_through_its_scope(rm) -> None:
    edge = await asyncio.to_thread(
        lambda: rm.create_device_with_sas("edge", None, None, "enabled", iot_edge=True)
    )
    assert edge.device_scope == f"ms-azure-iot-edge://edge-{edge.generation_id}"
    assert edge.parent_scopes == []
    leaf = await asyncio.to_thread(
        lambda: rm.create_device_with_sas(
            "leaf", None, None, "enabled", device_scope=edge.device_scope
        )
    )
    assert leaf.device_scope == edge.device_scope
    assert leaf.parent_scopes == [edge.device_scope]  # filled in by the hub
    twin = await call(rm.get_twin, "leaf")
    assert twin.device_scope == edge.device_scope and twin.parent_scopes == [edge.device_scope]

    # A non-edge device cannot make up a scope of its own, at creation or later.
    message = await _scope_failure(
        rm.create_device_with_sas, "other", None, None, "enabled", device_scope="my-own-scope"
    )
    assert "ErrorCode:InvalidDeviceScope;" in message and "my-own-scope" in message
    leaf = await call(rm.get_device, "leaf")
    await _scope_failure(
        rm.update_device_with_sas, "leaf", leaf.etag, None, None, "enabled", device_scope="made-up"
    )
    # A leaf cannot name a parent through parentScopes either.
    await _scope_failure(
        rm.create_device_with_sas, "p", None, None, "enabled", parent_scopes=[edge.device_scope]
    )
    assert (await call(rm.get_device, "leaf")).device_scope == edge.device_scope


async def test_edge_devices_nest_through_parent_scopes(rm) -> None:
    def create_edge(device_id: str, **kwargs: Any):
        return rm.create_device_with_sas(device_id, None, None, "enabled", iot_edge=True, **kwargs)

    top = await asyncio.to_thread(create_edge, "top")
    lower = await asyncio.to_thread(create_edge, "lower", parent_scopes=[top.device_scope])
    assert lower.parent_scopes == [top.device_scope]
    assert lower.device_scope not in (None, top.device_scope)

    def update_top(**kwargs: Any):
        return rm.update_device_with_sas(
            "top", top.etag, None, None, "enabled", iot_edge=True, **kwargs
        )

    # The scope is the hub's own and cannot change.
    await _scope_failure(update_top, device_scope=lower.device_scope)
    # No parent that is not an edge device, no two parents, no loops.
    await asyncio.to_thread(rm.create_device_with_sas, "plain", None, None, "enabled")
    for parents in (
        ["ms-azure-iot-edge://plain-1"],
        ["ms-azure-iot-edge://nobody-1"],
        [top.device_scope, lower.device_scope],
    ):
        await _scope_failure(create_edge, "e", parent_scopes=parents)
    message = await _scope_failure(update_top, parent_scopes=[lower.device_scope])
    assert "own parent or ancestor" in message
