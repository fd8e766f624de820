"""``twin-explorer twins patch`` on a real local hub with 10,000 module twins: preview,
apply with other writers in between, a kill of the process running the run and its
resume, a throttled revert from the report."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.iot.hub.models import Twin, TwinProperties

from tests.hubfixtures import HubProcess, RestClient
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk

DEVICES = 10_000
QUERY = "SELECT * FROM devices.modules WHERE moduleId = 'module-0'"
CHANGE = {"tags": {"rollout": "r1"}, "properties": {"desired": {"telemetryInterval": 30}}}
THEIRS = [f"device-{i:06d}" for i in range(9990, 9995)]  # they write telemetryInterval
BESIDE = [f"device-{i:06d}" for i in range(9995, 10_000)]  # they write another key


@pytest.fixture
def big_hub(hub_data_dir):
    data_dir = hub_data_dir("big")
    with HubCore.open(data_dir) as core:
        seed_bulk(core, DEVICES, 1)
    hub = HubProcess(data_dir)
    hub.start()
    yield hub
    hub.cleanup()


def twins(hub: HubProcess, tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HUB_CS": hub.service_connection_string}
    return subprocess.Popen(
        [sys.executable, "-m", "twin_explorer", "twins", "patch", *args,
         "--connection-string-env", "HUB_CS", "--ca", hub.ca_cert,
         "--runs-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, list[dict], str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, [json.loads(line) for line in out.splitlines()], err


def wait_for(predicate, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def results_written(runs: Path) -> int:
    files = list(runs.glob("*/results.jsonl"))
    return files[0].read_bytes().count(b"\n") if files else 0


def module_twin(rm, device_id: str) -> dict:
    return rm.get_module_twin(device_id, "module-0").as_dict()


@pytest.mark.slow  # 10,000 writes three times: about 90 s alone, minutes on a busy machine
@pytest.mark.timeout(1800)
def test_ten_thousand_module_twins_preview_apply_kill_resume_and_throttled_revert(
    big_hub: HubProcess, tmp_path: Path
) -> None:
    patch_file = tmp_path / "change.json"
    patch_file.write_text(json.dumps(CHANGE))
    runs = tmp_path / "runs"

    # Preview: every selected twin, one JSON line each, nothing written.
    code, preview, err = finish(twins(big_hub, tmp_path, "--query", QUERY, "--patch",
                                      str(patch_file), "--dry-run"))  # fmt: skip
    assert code == 0, err
    assert "10,000 twins selected" in err
    assert len(preview) == DEVICES
    assert {row["plan"] for row in preview} == {"change"}
    assert all(row["moduleId"] == "module-0" for row in preview)

    # Apply; others write some twins meanwhile; the process is killed part way.
    proc = twins(big_hub, tmp_path, "--query", QUERY, "--patch", str(patch_file), "--yes")
    rm = big_hub.registry_manager()
    wait_for(lambda: results_written(runs) > 0, 120, "the first writes")
    for device_id in THEIRS:
        rm.update_module_twin(device_id, "module-0",
                              Twin(properties=TwinProperties(desired={"telemetryInterval": 99})),
                              "*")  # fmt: skip
    for device_id in BESIDE:
        rm.update_module_twin(device_id, "module-0", Twin(tags={"owner": "ops"}), "*")
    wait_for(lambda: results_written(runs) >= 2000, 240, "2,000 writes")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    written = results_written(runs)
    assert written < DEVICES, "the run ended before the kill; nothing to resume"
    run_id = sorted(p.name for p in runs.iterdir())[-1]

    code, report, err = finish(twins(big_hub, tmp_path, "--resume", run_id, "--yes"))
    assert code == 1, err  # conflicts are listed, so not all went through
    outcomes = {row["identity"]: row for row in report}
    assert len(outcomes) == DEVICES
    conflicts = sorted(r["deviceId"] for r in report if r["outcome"] == "conflict")
    assert conflicts == THEIRS
    assert sum(r["outcome"] == "applied" for r in report) == DEVICES - len(THEIRS)
    for device_id in THEIRS:  # nothing overwritten silently
        assert module_twin(rm, device_id)["properties"]["desired"]["telemetryInterval"] == 99
    for device_id in BESIDE:
        twin = module_twin(rm, device_id)
        assert twin["tags"] == {"owner": "ops", "rollout": "r1"}
        assert twin["properties"]["desired"]["telemetryInterval"] == 30
    assert module_twin(rm, "device-000000")["tags"] == {"rollout": "r1"}

    # Revert from the report, twin by twin.
    code, report, err = finish(twins(big_hub, tmp_path, "--revert", run_id, "--yes"))
    assert code == 0, err
    assert len(report) == DEVICES - len(THEIRS)
    assert {r["outcome"] for r in report} == {"applied"}
    assert module_twin(rm, "device-000000")["tags"] == {}
    assert "telemetryInterval" not in module_twin(rm, "device-005000")["properties"]["desired"]
    assert module_twin(rm, BESIDE[0])["tags"] == {"owner": "ops"}
    assert module_twin(rm, THEIRS[0])["properties"]["desired"]["telemetryInterval"] == 99

    # A run the hub throttles (429 + Retry-After) still finishes, without failures.
    async def throttle(body) -> dict:
        rest = RestClient(f"https://{big_hub.hostname}:{big_hub.rest_port}",
                          big_hub.service_connection_string, big_hub.ca_cert)  # fmt: skip
        try:
            method = "PUT" if body else "GET"
            return (await rest.json(method, "/_localhub/throttle", json_body=body))[1]
        finally:
            await rest.close()

    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"device-{i:06d}/module-0\n" for i in range(500)))
    asyncio.run(throttle({"twinWritesPerSecond": 100, "retryAfterSeconds": 0.5, "burst": 10}))
    code, report, err = finish(
        twins(big_hub, tmp_path, "--ids", str(ids), "--patch", str(patch_file), "--yes")
    )
    refused = asyncio.run(throttle(None))["refused"]
    assert code == 0, err
    assert refused > 0 and "throttled" in err
    assert [r["outcome"] for r in report] == ["applied"] * 500


def test_twins_patch_refuses_to_apply_without_a_terminal_or_yes(local_hub, tmp_path) -> None:
    local_hub.registry_manager().create_device_with_sas("d1", None, None, "enabled")
    patch_file = tmp_path / "change.json"
    patch_file.write_text('{"tags": {"a": 1}}')
    code, _, err = finish(twins(local_hub, tmp_path, "--query", "SELECT * FROM devices",
                                "--patch", str(patch_file)))  # fmt: skip
    assert code == 2 and "--yes" in err
    assert not local_hub.registry_manager().get_twin("d1").tags  # nothing written
    patch_file.write_text('{"tags": {"a b": 1}}')
    code, _, err = finish(twins(local_hub, tmp_path, "--query", "SELECT * FROM devices",
                                "--patch", str(patch_file), "--dry-run"))  # fmt: skip
    assert code == 2 and "a b" in err
    assert local_hub.service_connection_string.split("SharedAccessKey=")[1] not in err


def test_twins_patch_sets_and_removes_keys_named_on_the_command_line(local_hub, tmp_path):
    rm = local_hub.registry_manager()
    rm.create_device_with_sas("d1", None, None, "enabled")
    rm.update_twin("d1", Twin(tags={"retired": True, "site": "a"}), "*")
    args = ["--query", "SELECT * FROM devices", "--set", "tags.site=seattle",
            "--set", "desired.interval=30", "--remove", "tags.retired"]  # fmt: skip
    code, preview, err = finish(twins(local_hub, tmp_path, *args, "--dry-run"))
    assert code == 0, err
    assert preview[0]["patch"] == {
        "tags": {"site": "seattle", "retired": None},
        "properties": {"desired": {"interval": 30}},
    }
    code, report, err = finish(twins(local_hub, tmp_path, *args, "--yes"))
    assert code == 0, err
    assert [row["outcome"] for row in report] == ["applied"]
    twin = rm.get_twin("d1")
    assert twin.tags == {"site": "seattle"} and twin.properties.desired["interval"] == 30
