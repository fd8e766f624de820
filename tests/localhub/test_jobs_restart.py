"""Jobs and configurations outlive a restart of the ``twin-explorer hub`` process: a job
scheduled before the restart runs after it, and a configuration is still there and
still applied to twins created afterwards."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from azure.iot.hub import IoTHubConfigurationManager, IoTHubJobManager
from azure.iot.hub.models import (
    Configuration,
    ConfigurationContent,
    JobRequest,
    Twin,
    TwinProperties,
)

from tests.hubfixtures import HubProcess, trusting_client

TIMEOUT = 30.0


def _trusting(cls, hub: HubProcess):
    return trusting_client(cls, hub.service_connection_string, hub.ca_cert)


def test_a_scheduled_job_and_a_configuration_survive_a_restart(local_hub: HubProcess) -> None:
    registry = local_hub.registry_manager()
    registry.create_device_with_sas("r1", None, None, "enabled")
    start = datetime.now(UTC) + timedelta(seconds=2)
    request = JobRequest(
        job_id="after-restart",
        type="scheduleUpdateTwin",
        query_condition="deviceId = 'r1'",
        update_twin=Twin(etag="*", properties=TwinProperties(desired={"mode": "night"})),
        start_time=start,
    )
    jobs = _trusting(IoTHubJobManager, local_hub)
    assert jobs.create_scheduled_job("after-restart", request).status == "scheduled"
    configs = _trusting(IoTHubConfigurationManager, local_hub)
    configs.create_configuration(
        Configuration(
            id="all-lamps",
            content=ConfigurationContent(device_content={"properties.desired.lamp": "on"}),
            target_condition="*",
        )
    )

    local_hub.restart()
    jobs, configs = (
        _trusting(IoTHubJobManager, local_hub),
        _trusting(IoTHubConfigurationManager, local_hub),
    )
    registry = local_hub.registry_manager()
    deadline = time.monotonic() + TIMEOUT
    while (job := jobs.get_scheduled_job("after-restart")).status != "completed":
        assert time.monotonic() < deadline, job.status
        time.sleep(0.1)
    assert datetime.now(UTC) >= start
    assert job.device_job_statistics.succeeded_count == 1
    assert registry.get_twin("r1").properties.desired["mode"] == "night"

    assert configs.get_configuration("all-lamps").target_condition == "*"
    registry.create_device_with_sas("r2", None, None, "enabled")
    twin = registry.get_twin("r2")
    assert twin.properties.desired["lamp"] == "on"
    assert twin.additional_properties["configurations"] == {"all-lamps": {"status": "Applied"}}
