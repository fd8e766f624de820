"""Scheduled jobs (``/jobs/v2``) driven by the unmodified Python service SDK
(``IoTHubJobManager``) against an in-process hub, with unmodified aio device clients
answering methods and receiving desired patches.

Every wait is on a condition with a time limit (:func:`job_until`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.iot.device import MethodResponse
from azure.iot.hub import IoTHubJobManager
from azure.iot.hub.models import CloudToDeviceMethod, JobRequest, Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import server_registry_manager
from tests.localhub.mqtt_support import (
    TIMEOUT,
    Inbox,
    MqttHub,
    desired_patches,
    ensure_identity,
    mqtt_hub,
    sdk,
    set_handler,
    until,
)

__all__ = ["mqtt_hub"]  # the fixture


async def job_until(manager: IoTHubJobManager, job_id: str, *statuses: str) -> Any:
    """Poll the job with the SDK until its status is one of ``statuses``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        job = await sdk(manager, "get_scheduled_job", job_id)
        if job.status in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {job.status}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def silent_device(hub: MqttHub, device_id: str) -> AsyncIterator[Inbox]:
    """A connected device that takes method requests (yielded as they come) and never
    answers them."""
    async with hub.client(ensure_identity(hub.core, device_id)) as device:
        await device.connect()
        requests = Inbox()
        await set_handler(device, "on_method_request_received", requests)
        yield requests


def twin_job(job_id: str, condition: str, desired: dict[str, Any], **fields: Any) -> JobRequest:
    return JobRequest(
        job_id=job_id,
        type="scheduleUpdateTwin",
        query_condition=condition,
        update_twin=Twin(etag="*", properties=TwinProperties(desired=desired)),
        **fields,
    )


def method_job(job_id: str, condition: str, name: str, **fields: Any) -> JobRequest:
    method = CloudToDeviceMethod(
        method_name=name,
        payload=fields.pop("payload", None),
        response_timeout_in_seconds=fields.pop("response_timeout", 5),
        connect_timeout_in_seconds=0,
    )
    return JobRequest(
        job_id=job_id,
        type="scheduleDeviceMethod",
        query_condition=condition,
        cloud_to_device_method=method,
        **fields,
    )


async def test_twin_update_job_patches_matching_twins_and_notifies_devices(
    mqtt_hub: MqttHub,
) -> None:
    core = mqtt_hub.core
    for device_id in ("a1", "a2", "b1"):
        ensure_identity(core, device_id)
        building = "43" if device_id.startswith("a") else "7"
        core.patch_twin(device_id, None, {"tags": {"building": building}}, None)
    manager = mqtt_hub.service(IoTHubJobManager)
    async with mqtt_hub.client(ensure_identity(core, "a1")) as device:
        patches = await desired_patches(device)

        created = await sdk(
            manager,
            "create_scheduled_job",
            "twin-1",
            twin_job("twin-1", "tags.building = '43'", {"fan": "on"}),
        )
        assert created.job_id == "twin-1"
        assert created.type == "scheduleUpdateTwin"
        assert created.status in ("queued", "running", "completed")
        assert created.query_condition == "tags.building = '43'"

        done = await job_until(manager, "twin-1", "completed")
        stats = done.device_job_statistics
        assert (stats.device_count, stats.succeeded_count, stats.failed_count) == (2, 2, 0)
        assert (stats.running_count, stats.pending_count) == (0, 0)
        assert done.end_time is not None
        # The same write path as PATCH /twins: version, $version and the notification.
        assert await patches.get() == {"fan": "on", "$version": 2}
    assert core.get_twin("a2")["properties"]["desired"]["fan"] == "on"
    assert "fan" not in core.get_twin("b1")["properties"]["desired"]
    results = core.jobs.device_results("twin-1")
    assert [(r["deviceId"], r["status"]) for r in results] == [
        ("a1", "completed"),
        ("a2", "completed"),
    ]
    assert results[0]["jobType"] == "scheduleUpdateTwin"
    assert results[0]["outcome"] == {"deviceMethodResponse": None}  # the docs' sample


async def test_method_job_calls_each_device_and_records_its_answer(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    for device_id in ("m1", "m2", "m3"):
        ensure_identity(core, device_id)
    manager = mqtt_hub.service(IoTHubJobManager)
    async with (
        mqtt_hub.client(core.identity_connection_string("m1")) as one,
        mqtt_hub.client(core.identity_connection_string("m2")) as two,
    ):
        for status, device in ((200, one), (500, two)):
            await device.connect()

            async def answer(request, device=device, status=status) -> None:
                response = {"got": request.payload, "name": request.name}
                await device.send_method_response(
                    MethodResponse.create_from_method_request(request, status, response)
                )

            await set_handler(device, "on_method_request_received", answer)

        await sdk(
            manager,
            "create_scheduled_job",
            "reboot-all",
            method_job("reboot-all", "deviceId IN ['m1', 'm2', 'm3']", "reboot", payload={"x": 1}),
        )
        done = await job_until(manager, "reboot-all", "completed")
    stats = done.device_job_statistics
    # m3 is offline (connect timeout 0): that device fails, the job completes.
    assert (stats.device_count, stats.succeeded_count, stats.failed_count) == (3, 2, 1)
    assert done.cloud_to_device_method.method_name == "reboot"
    results = {r["deviceId"]: r for r in core.jobs.device_results("reboot-all")}
    assert results["m1"]["outcome"]["deviceMethodResponse"] == {
        "status": 200,
        "payload": {"got": {"x": 1}, "name": "reboot"},
    }
    assert results["m2"]["outcome"]["deviceMethodResponse"]["status"] == 500
    assert results["m2"]["status"] == "completed"  # the device answered, whatever it said
    assert results["m3"]["status"] == "failed"
    assert results["m3"]["error"]["code"] == "DeviceNotOnline"

    # The same results through the registry's query of devices.jobs, a page at a time.
    registry = server_registry_manager(mqtt_hub.server)
    text = "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'reboot-all'"
    seen, token = [], None
    while True:
        page = await asyncio.to_thread(registry.query_iot_hub, {"query": text}, token, 2)
        assert len(page.items) <= 2
        seen += [(twin.device_id, twin.status) for twin in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert page.type == "deviceJob"
    assert seen == [("m1", "completed"), ("m2", "completed"), ("m3", "failed")]
    failed = await asyncio.to_thread(
        registry.query_iot_hub,
        {"query": "SELECT deviceId, error.code FROM devices.jobs WHERE status = 'failed'"},
    )
    assert [item.additional_properties for item in failed.items] == [{"code": "DeviceNotOnline"}]


async def test_future_start_time_waits_and_cancel_stops_it(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    ensure_identity(core, "later")
    manager = mqtt_hub.service(IoTHubJobManager)
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    far = datetime.now(UTC) + timedelta(hours=1)
    await sdk(
        manager,
        "create_scheduled_job",
        "soon",
        twin_job("soon", "deviceId = 'later'", {"when": "soon"}, start_time=soon),
    )
    created = await sdk(
        manager,
        "create_scheduled_job",
        "far",
        twin_job("far", "deviceId = 'later'", {"when": "far"}, start_time=far),
    )
    assert created.status == "scheduled"
    assert (await sdk(manager, "get_scheduled_job", "soon")).status == "scheduled"
    assert "when" not in core.get_twin("later")["properties"]["desired"]

    done = await job_until(manager, "soon", "completed")
    assert datetime.now(UTC) >= soon
    assert done.device_job_statistics.succeeded_count == 1
    assert core.get_twin("later")["properties"]["desired"]["when"] == "soon"

    cancelled = await sdk(manager, "cancel_scheduled_job", "far")
    assert cancelled.status == "cancelled"
    assert (await sdk(manager, "get_scheduled_job", "far")).status == "cancelled"
    assert core.get_twin("later")["properties"]["desired"]["when"] == "soon"


async def test_max_execution_time_fails_a_job_that_runs_over(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    manager = mqtt_hub.service(IoTHubJobManager)
    async with silent_device(mqtt_hub, "mute") as requests:
        await sdk(
            manager,
            "create_scheduled_job",
            "slow",
            method_job(
                "slow",
                "deviceId = 'mute'",
                "wait",
                response_timeout=30,
                max_execution_time_in_seconds=1,
            ),
        )
        assert (await requests.get()).name == "wait"
        failed = await job_until(manager, "slow", "failed")
    assert "time" in failed.failure_reason
    assert failed.device_job_statistics.failed_count == 1
    assert core.jobs.device_results("slow")[0]["status"] == "failed"


async def test_job_errors_have_iot_hub_codes(mqtt_hub: MqttHub) -> None:
    manager = mqtt_hub.service(IoTHubJobManager)
    ensure_identity(mqtt_hub.core, "e1")
    request = twin_job("dup", "deviceId = 'e1'", {"a": 1})
    await sdk(manager, "create_scheduled_job", "dup", request)

    async def status_of(method: str, *args: Any) -> tuple[int, str]:
        with pytest.raises(HttpOperationError) as caught:
            await sdk(manager, method, *args)
        response = caught.value.response
        return response.status_code, response.headers.get("iothub-errorcode")

    assert await status_of("create_scheduled_job", "dup", request) == (409, "JobAlreadyExists")
    assert await status_of("get_scheduled_job", "nope") == (404, "JobNotFound")
    assert await status_of("cancel_scheduled_job", "nope") == (404, "JobNotFound")
    bad = twin_job("bad", "deviceId = = 'x'", {"a": 1})
    assert await status_of("create_scheduled_job", "bad", bad) == (400, "ArgumentInvalid")
    dotted = twin_job("dotted", "deviceId = 'e1'", {"a.b": 1})  # no '.' in twin keys
    assert await status_of("create_scheduled_job", "dotted", dotted) == (400, "ArgumentInvalid")
    no_type = JobRequest(job_id="t", query_condition="deviceId = 'e1'")
    assert await status_of("create_scheduled_job", "t", no_type) == (400, "ArgumentInvalid")


async def test_cancel_ends_the_method_calls_a_job_has_out(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    manager = mqtt_hub.service(IoTHubJobManager)
    async with silent_device(mqtt_hub, "silent") as requests:
        request = method_job("hold", "deviceId = 'silent'", "hold", response_timeout=300)
        await sdk(manager, "create_scheduled_job", "hold", request)
        await requests.get()  # the call is out; the device will never answer
        cancelled = await sdk(manager, "cancel_scheduled_job", "hold")
        assert cancelled.status == "cancelled"
        assert cancelled.device_job_statistics.running_count == 0
        # The job lets go of the call at once, not when its 300 s run out.
        await until(lambda: core.methods.pending_count == 0, within=5)
    (result,) = core.jobs.device_results("hold")
    assert result["status"] == "canceled"
    assert result["error"]["code"] == "JobCancelled"
