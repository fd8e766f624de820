"""The unmodified Node.js service SDK (``azure-iothub`` Registry) against an in-process hub:
listing devices, bulk create / update / delete, and device scopes.

The SDK only dials port 443, so it runs in a private network namespace whose port 443
leads to the hub (``tests/node/netns.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.node.harness import NodeService, node_service


@pytest_asyncio.fixture
async def registry(hub_server) -> AsyncIterator[NodeService]:
    async with node_service(hub_server) as service:
        yield service


async def test_list_devices(registry: NodeService, hub_server) -> None:
    for device_id in ("b", "a", "c"):
        hub_server.core.put_device(device_id, {}, None)
    answer = await registry.registry("list")
    assert answer["event"] == "result", answer
    assert answer["status"] == 200
    assert [device["deviceId"] for device in answer["body"]] == ["a", "b", "c"]


def _failed(answer: dict) -> list[tuple[str, str]]:
    """(deviceId, errorCode) of a bulk call the hub answered 400 (the SDK's error)."""
    assert answer["event"] == "error" and answer["status"] == 400, answer
    assert answer["body"]["isSuccessful"] is False
    return [(error["deviceId"], error["errorCode"]) for error in answer["body"]["errors"]]


async def test_bulk_add_update_remove(registry: NodeService, hub_server) -> None:
    core = hub_server.core
    added = await registry.registry(
        "addDevices",
        [{"deviceId": "n1"}, {"deviceId": "n2", "status": "disabled"}, {"deviceId": "n3"}],
    )
    assert added == {
        "event": "result",
        "status": 200,
        "body": {"isSuccessful": True, "errors": [], "warnings": []},
    }
    assert core.get_device("n2")["status"] == "disabled"

    again = await registry.registry("addDevices", [{"deviceId": "n1"}, {"deviceId": "n4"}])
    assert _failed(again) == [("n1", "DeviceAlreadyExists")]
    assert core.get_device("n4")["deviceId"] == "n4"

    # updateDevices(force=false) sends UpdateIfMatchETag with each device's etag.
    listed = (await registry.registry("list"))["body"]
    current = {device["deviceId"]: device for device in listed}
    changed = [{**current["n1"], "status": "disabled"}, {**current["n3"], "status": "disabled"}]
    updated = await registry.registry("updateDevices", changed, False)
    assert updated["status"] == 200, updated
    assert core.get_device("n1")["status"] == core.get_device("n3")["status"] == "disabled"
    stale = await registry.registry("updateDevices", changed, False)
    assert _failed(stale) == [("n1", "PreconditionFailed"), ("n3", "PreconditionFailed")]
    forced = await registry.registry(
        "updateDevices", [{"deviceId": "n1", "status": "enabled"}], True
    )
    assert forced["status"] == 200 and core.get_device("n1")["status"] == "enabled"

    # removeDevices(force=false) sends DeleteIfMatchETag; force=true plain Delete.
    n2 = core.get_device("n2")
    missing = {"deviceId": "n9", "etag": "MQ=="}
    removed = await registry.registry("removeDevices", [n2, missing], False)
    assert _failed(removed) == [("n9", "DeviceNotFound")]
    removed = await registry.registry(
        "removeDevices", [{"deviceId": "n1"}, {"deviceId": "n3"}], True
    )
    assert removed["status"] == 200
    assert [device["deviceId"] for device in core.list_devices()] == ["n4"]


async def test_edge_and_device_scope_relationship(registry: NodeService) -> None:
    """azure-iot-sdk-node's e2e "Can create an edge and device scope relationship", with
    the error the hub answers checked too."""
    edge = await registry.registry(
        "create", {"deviceId": "edge", "status": "enabled", "capabilities": {"iotEdge": True}}
    )
    assert edge["status"] == 200, edge
    scope = edge["body"]["deviceScope"]
    assert edge["body"]["capabilities"]["iotEdge"] is True and scope
    scoped = await registry.registry(
        "create", {"deviceId": "scoped", "status": "enabled", "deviceScope": scope}
    )
    assert scoped["status"] == 200, scoped
    assert scoped["body"]["deviceScope"] == scope
    assert scoped["body"]["parentScopes"] == [scope]

    moved = await registry.registry("update", {**scoped["body"], "deviceScope": "a-made-up-scope"})
    assert moved["event"] == "error" and moved["status"] == 400, moved
    assert moved["body"]["Message"].startswith("ErrorCode:InvalidDeviceScope;")
    # Sending the device back as it was changes nothing and is fine.
    same = await registry.registry("update", scoped["body"])
    assert same["status"] == 200 and same["body"]["deviceScope"] == scope
    for device_id in ("edge", "scoped"):
        assert (await registry.registry("delete", device_id))["status"] == 204
