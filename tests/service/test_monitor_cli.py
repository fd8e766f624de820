"""``twin-explorer monitor`` end to end: a hub process, a device sending over MQTT, a
twin write, and the command's JSON lines with its filters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from azure.iot.device import IoTHubDeviceClient, Message, ProxyOptions

from tests.hubfixtures import HubProcess


def _monitor(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_explorer",
            "monitor",
            "--data-dir",
            str(hub.data_dir),
            "--port",
            str(hub.info["amqp_port"]),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _device(hub: HubProcess, device_id: str) -> IoTHubDeviceClient:
    manager = hub.registry_manager()
    device = manager.create_device_with_sas(device_id, None, None, "enabled")
    key = device.authentication.symmetric_key.primary_key
    return IoTHubDeviceClient.create_from_connection_string(
        f"HostName={hub.hostname};DeviceId={device_id};SharedAccessKey={key}",
        server_verification_cert=Path(hub.ca_cert).read_text(),
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", hub.proxy_port),
    )


def test_monitor_prints_filtered_events_as_json_lines(start_local_hub):
    hub = start_local_hub(extra_args=["--amqp-port", "0"])
    for device_id in ("sensor-1", "other"):
        client = _device(hub, device_id)
        try:
            client.connect()
            message = Message('{"temperature": 21}', content_type="application/json")
            message.custom_properties["unit"] = "C"
            client.send_message(message)
            client.patch_twin_reported_properties({"fw": "1.0"})
        finally:
            client.shutdown()
    telemetry = _monitor(
        hub, "--from", "start", "--source", "telemetry", "--device", "sensor-*", "--count", "1"
    )
    assert telemetry.returncode == 0, telemetry.stderr
    (line,) = telemetry.stdout.splitlines()
    record = json.loads(line)
    assert record["source"] == "Telemetry" and record["deviceId"] == "sensor-1"
    assert record["body"] == {"temperature": 21}
    assert record["properties"] == {"unit": "C"}
    assert record["systemProperties"]["content-type"] == "application/json"
    twin = _monitor(hub, "--from", "start", "--source", "twin", "--count", "2")
    assert twin.returncode == 0, twin.stderr
    records = [json.loads(line) for line in twin.stdout.splitlines()]
    assert {r["deviceId"] for r in records} == {"sensor-1", "other"}
    assert all(r["properties"]["opType"] == "updateTwin" for r in records)
    assert all(r["body"]["properties"]["reported"]["fw"] == "1.0" for r in records)
    key = hub.service_connection_string.split("SharedAccessKey=")[1]
    assert key not in telemetry.stdout + telemetry.stderr + twin.stdout + twin.stderr


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_explorer", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_monitor_says_what_is_wrong(tmp_path: Path):
    bad_time = _run("--data-dir", str(tmp_path), "--from", "yesterday")
    assert bad_time.returncode == 2
    assert "--from 'yesterday': use now, start or a time" in bad_time.stderr
    no_hub = _run("--data-dir", str(tmp_path), "--from", "start")
    assert no_hub.returncode == 2 and "No local hub in" in no_hub.stderr
