"""``twin-explorer twins patch --as-job`` on a real local hub: the change runs as an IoT
Hub scheduled twin-update job (``/jobs/v2``), its id, progress and final statistics are
printed, and Ctrl-C cancels it on the hub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.iot.hub import IoTHubJobManager

from tests.hubfixtures import HubProcess, trusting_client
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk

DEVICES = 40


@pytest.fixture
def hub(hub_data_dir):
    data_dir = hub_data_dir("jobs")
    with HubCore.open(data_dir) as core:
        seed_bulk(core, DEVICES, 0, prefix="jobdev")
    hub = HubProcess(data_dir)
    hub.start()
    yield hub
    hub.cleanup()


def twins(hub: HubProcess, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HUB_CS": hub.service_connection_string}
    return subprocess.Popen(
        [sys.executable, "-m", "twin_explorer", "twins", "patch", *args,
         "--connection-string-env", "HUB_CS", "--ca", hub.ca_cert, "--poll", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=_ctrl_c_reaches_it,
    )  # fmt: skip


def _ctrl_c_reaches_it() -> None:
    # A runner started in the background passes SIGINT on ignored; a terminal does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def job_manager(hub: HubProcess) -> IoTHubJobManager:
    return trusting_client(IoTHubJobManager, hub.service_connection_string, hub.ca_cert)


@pytest.mark.timeout(180)
def test_a_job_from_the_command_changes_the_twins_and_prints_its_statistics(
    hub: HubProcess,
) -> None:
    proc = twins(hub, "--query", "SELECT * FROM devices", "--set", "tags.rollout=job1",
                 "--as-job", "--yes")  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    started, *_, final = [json.loads(line) for line in out.splitlines()]
    assert started["jobId"].startswith("twin-explorer-")
    assert started["type"] == "scheduleUpdateTwin"
    assert final["jobId"] == started["jobId"]
    assert final["status"] == "completed"
    stats = final["deviceJobStatistics"]
    assert stats["deviceCount"] == DEVICES
    assert stats["succeededCount"] == DEVICES
    assert f"Job {started['jobId']}: completed, {DEVICES:,} devices: {DEVICES:,} succeeded" in err
    assert "no per-twin etag" in err  # what a job cannot do is said before it starts
    rm = hub.registry_manager()
    for i in (0, DEVICES - 1):
        assert rm.get_twin(f"jobdev-{i:06d}").tags["rollout"] == "job1"
    job = job_manager(hub).get_scheduled_job(started["jobId"])  # the hub agrees
    assert job.status == "completed"


@pytest.mark.timeout(180)
def test_ctrl_c_cancels_the_job_on_the_hub(hub: HubProcess) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    proc = twins(hub, "--query", "SELECT * FROM devices", "--set", "tags.rollout=later",
                 "--as-job", "--start", later, "--yes")  # fmt: skip
    assert proc.stdout is not None
    started = json.loads(proc.stdout.readline())  # printed once the hub took the job
    assert started["status"] == "scheduled"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"Job {started['jobId']} cancelled" in err
    assert job_manager(hub).get_scheduled_job(started["jobId"]).status == "cancelled"
    assert "rollout" not in (hub.registry_manager().get_twin("jobdev-000000").tags or {})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--query", "SELECT * FROM devices.modules"], "device twins only"),
        (["--query", "SELECT * FROM devices", "--start", "tomorrow"], "is not a time"),
        (["--query", "SELECT * FROM devices", "--dry-run"], "not with --resume"),
    ],
)
def test_what_a_job_cannot_take_is_said_before_anything_is_sent(
    hub: HubProcess, tmp_path: Path, args: list[str], says: str
) -> None:
    proc = twins(hub, *args, "--set", "tags.x=1", "--as-job", "--yes")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert says in err
    assert out == ""
