"""Scheduled jobs and configurations driven by the unmodified Node.js service SDK
(``azure-iothub`` JobClient and Registry) against an in-process hub, a Python aio device
answering the method.

The SDK only dials port 443, so it runs in a private network namespace whose port 443
leads to the hub (``tests/node/netns.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from azure.iot.device import MethodResponse

from tests.localhub.mqtt_support import TIMEOUT, MqttHub, ensure_identity, mqtt_hub, set_handler
from tests.node.harness import NodeService, node_service

__all__ = ["mqtt_hub"]  # the fixture


@pytest_asyncio.fixture
async def node(mqtt_hub: MqttHub) -> AsyncIterator[NodeService]:
    async with node_service(mqtt_hub.server) as service:
        yield service


async def job_until(node: NodeService, job_id: str, status: str) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while True:
        answer = await node.job("getJob", job_id)
        assert answer["event"] == "result", answer
        if answer["body"]["status"] == status:
            return answer["body"]
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.05)


async def test_schedule_twin_update_and_query_jobs(node: NodeService, mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    for device_id in ("n1", "n2", "n3"):
        ensure_identity(core, device_id)
    patch = {"etag": "*", "tags": {"ring": "early"}, "properties": {"desired": {"fw": "1.2"}}}
    answer = await node.job("scheduleTwinUpdate", "nt-1", "deviceId IN ['n1', 'n2']", patch)
    assert answer["event"] == "result" and answer["status"] == 200, answer
    assert answer["body"]["jobId"] == "nt-1"
    assert answer["body"]["type"] == "scheduleUpdateTwin"
    job = await job_until(node, "nt-1", "completed")
    assert job["deviceJobStatistics"]["succeededCount"] == 2
    assert core.get_twin("n2")["tags"] == {"ring": "early"}
    assert core.get_twin("n2")["properties"]["desired"]["fw"] == "1.2"
    assert "ring" not in core.get_twin("n3")["tags"]

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for job_id in ("nt-2", "nt-3", "nt-4"):
        scheduled = await node.job(
            "scheduleTwinUpdate", job_id, "deviceId = 'n3'", patch, start=later, max_seconds=60
        )
        assert scheduled["body"]["status"] == "scheduled", scheduled
        assert scheduled["body"]["maxExecutionTimeInSeconds"] == 60

    # createQuery pages with x-ms-max-item-count and x-ms-continuation.
    pages = await node.job_pages(None, None, 2)
    assert [[job["jobId"] for job in page] for page in pages] == [
        ["nt-1", "nt-2"],
        ["nt-3", "nt-4"],
    ]
    scheduled_only = await node.job_pages("scheduleUpdateTwin", "scheduled", 10)
    assert [job["jobId"] for job in scheduled_only[0]] == ["nt-2", "nt-3", "nt-4"]
    assert await node.job_pages("scheduleDeviceMethod", None, 10) == [[]]

    cancelled = await node.job("cancelJob", "nt-3")
    assert cancelled["status"] == 200 and cancelled["body"]["status"] == "cancelled"
    assert [j["jobId"] for j in (await node.job_pages(None, "cancelled", 10))[0]] == ["nt-3"]


async def test_schedule_device_method_with_a_python_device_answering(
    node: NodeService, mqtt_hub: MqttHub
) -> None:
    core = mqtt_hub.core
    async with mqtt_hub.client(ensure_identity(core, "pm1")) as device:
        await device.connect()

        async def answer(request) -> None:
            await device.send_method_response(
                MethodResponse.create_from_method_request(request, 201, {"echo": request.payload})
            )

        await set_handler(device, "on_method_request_received", answer)
        params = {"methodName": "blink", "payload": {"times": 3}, "responseTimeoutInSeconds": 10}
        answer_ = await node.job("scheduleDeviceMethod", "nm-1", "deviceId = 'pm1'", params)
        assert answer_["status"] == 200, answer_
        assert answer_["body"]["cloudToDeviceMethod"]["methodName"] == "blink"
        job = await job_until(node, "nm-1", "completed")
    assert job["deviceJobStatistics"]["succeededCount"] == 1
    (result,) = core.jobs.device_results("nm-1")
    assert result["outcome"]["deviceMethodResponse"] == {
        "status": 201,
        "payload": {"echo": {"times": 3}},
    }


async def test_job_errors_through_the_node_sdk(node: NodeService, mqtt_hub: MqttHub) -> None:
    ensure_identity(mqtt_hub.core, "e1")
    patch = {"properties": {"desired": {"a": 1}}}
    first = await node.job("scheduleTwinUpdate", "dup", "deviceId = 'e1'", patch)
    assert first["status"] == 200
    again = await node.job("scheduleTwinUpdate", "dup", "deviceId = 'e1'", patch)
    assert (again["event"], again["status"]) == ("error", 409), again
    assert again["body"]["Message"].startswith("ErrorCode:JobAlreadyExists;")
    missing = await node.job("getJob", "missing")
    # The SDK names only DeviceNotFound and IotHubNotFound 404s; the body says which.
    assert (missing["status"], missing["name"]) == (404, "Error"), missing
    assert missing["body"]["Message"].startswith("ErrorCode:JobNotFound;")
    bad = await node.job("scheduleTwinUpdate", "bad", "deviceId ==", patch)
    assert (bad["status"], bad["name"]) == (400, "ArgumentError"), bad


async def test_configurations_through_the_node_registry(
    node: NodeService, mqtt_hub: MqttHub
) -> None:
    core = mqtt_hub.core
    ensure_identity(core, "c1")
    core.patch_twin("c1", None, {"tags": {"env": "lab"}}, None)
    config = {
        "id": "lab-settings",
        "content": {"deviceContent": {"properties.desired.lab": {"mode": "quiet"}}},
        "targetCondition": "tags.env = 'lab'",
        "priority": 3,
        "labels": {"team": "ops"},
    }
    added = await node.registry("addConfiguration", config)
    assert added["event"] == "result" and added["status"] == 201, added
    deadline = time.monotonic() + TIMEOUT
    while core.configurations.targeting("c1") != {"lab-settings": "Applied"}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert core.get_twin("c1")["properties"]["desired"]["lab"] == {"mode": "quiet"}
    assert core.get_twin("c1")["configurations"] == {"lab-settings": {"status": "Applied"}}

    got = await node.registry("getConfiguration", "lab-settings")
    assert got["status"] == 200, got
    body = got["body"]
    assert body["schemaVersion"] == "1.0"  # the SDK sets it
    assert body["systemMetrics"]["results"] == {"targetedCount": 1, "appliedCount": 1}
    listed = await node.registry("getConfigurations")
    assert [c["id"] for c in listed["body"]] == ["lab-settings"]

    # updateConfiguration(config) sends If-Match with the configuration's etag, quoted.
    body["priority"] = 9
    updated = await node.registry("updateConfiguration", body)
    assert updated["status"] == 200 and updated["body"]["priority"] == 9, updated
    stale = await node.registry("updateConfiguration", body)
    assert (stale["status"], stale["name"]) == (412, "InvalidEtagError"), stale
    forced = await node.registry("updateConfiguration", {**body, "priority": 1}, True)
    assert forced["status"] == 200, forced
    duplicate = await node.registry("addConfiguration", config)
    assert duplicate["status"] == 409, duplicate

    removed = await node.registry("removeConfiguration", "lab-settings")
    assert removed["status"] == 204, removed
    missing = await node.registry("getConfiguration", "lab-settings")
    assert missing["status"] == 404, missing


async def test_apply_configuration_content_through_the_node_registry(
    node: NodeService, mqtt_hub: MqttHub
) -> None:
    core = mqtt_hub.core
    core.put_device("edge-n", {"capabilities": {"iotEdge": True}}, None)
    content = {
        "modulesContent": {
            "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1"}},
            "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {"r": "x"}}},
        }
    }
    applied = await node.registry("applyConfigurationContentOnDevice", "edge-n", content)
    assert applied["status"] == 204, applied
    agent = core.get_twin("edge-n", "$edgeAgent")["properties"]["desired"]
    assert agent["schemaVersion"] == "1.1"
    assert core.get_twin("edge-n", "$edgeHub")["properties"]["desired"]["routes"] == {"r": "x"}


async def test_edge_deployment_through_the_node_registry(
    node: NodeService, mqtt_hub: MqttHub
) -> None:
    core = mqtt_hub.core
    core.put_device("edge-d", {"capabilities": {"iotEdge": True}}, None)
    core.patch_twin("edge-d", None, {"tags": {"fleet": "north"}}, None)
    deployment = {
        "id": "north-base",
        "content": {
            "modulesContent": {
                "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": {}}},
                "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}},
                "filter": {"properties.desired": {"threshold": 5}},
            }
        },
        "targetCondition": "tags.fleet = 'north'",
        "priority": 2,
    }
    added = await node.registry("addConfiguration", deployment)
    assert added["status"] == 201, added
    deadline = time.monotonic() + TIMEOUT
    while core.configurations.targeting("edge-d", "$edgeAgent") != {"north-base": "Applied"}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert core.get_twin("edge-d", "filter")["properties"]["desired"]["threshold"] == 5
    got = await node.registry("getConfiguration", "north-base")
    assert got["body"]["systemMetrics"]["results"] == {
        "targetedCount": 1,
        "appliedCount": 1,
        "reportedSuccessfulCount": 0,
        "reportedFailedCount": 0,
    }
