"""``twin-explorer hub`` as a real process: the ready line, signals, persistence, crash
durability, and SDK clients reaching it through its CONNECT proxy."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from azure.iot.device import IoTHubDeviceClient, Message, ProxyOptions
from azure.iot.device.exceptions import NoConnectionError
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import READY_KEYS, HubProcess, auth_header


def test_ready_line_and_clean_exit_on_sigterm(local_hub):
    info = local_hub.info
    assert set(info) == READY_KEYS
    assert info["pid"] == local_hub.pid
    assert info["hostname"] == "localhost"
    assert Path(info["ca_cert"]).is_absolute() and Path(info["ca_cert"]).is_file()
    assert Path(info["data_dir"]) == local_hub.data_dir.absolute()
    assert f"HostName=localhost:{info['rest_port']};" in info["service_connection_string"]
    stats = local_hub.registry_manager().get_device_registry_statistics()
    assert stats.total_device_count == 0
    assert local_hub.terminate() == 0
    assert local_hub.trailing_stdout == ""  # exactly one line, ever


def test_closing_stdin_stops_the_hub_with_its_parent(local_hub):
    # The app holds the hub's stdin; if the app dies, the pipe closes and the hub follows.
    assert local_hub.close_stdin(timeout=30) == 0
    assert not local_hub.running


def test_sigint_also_exits_cleanly(local_hub):
    assert local_hub.interrupt() == 0
    assert local_hub.trailing_stdout == ""


def test_registry_and_twins_survive_a_restart(local_hub):
    rm = local_hub.registry_manager()
    device = rm.create_device_with_sas("keeper", None, None, "enabled")
    rm.create_module_with_sas("keeper", "m1", None, None, None)
    rm.update_module_twin("keeper", "m1", {"properties": {"desired": {"x": 1}}})
    ca_before = Path(local_hub.ca_cert).read_bytes()

    local_hub.restart()
    rm = local_hub.registry_manager()
    again = rm.get_device("keeper")
    assert again.authentication.symmetric_key.primary_key == (
        device.authentication.symmetric_key.primary_key
    )
    assert rm.get_module_twin("keeper", "m1").properties.desired["x"] == 1
    assert Path(local_hub.ca_cert).read_bytes() == ca_before  # clients keep trusting it


def test_an_acknowledged_create_survives_sigkill(local_hub):
    rm = local_hub.registry_manager()
    rm.create_device_with_sas("durable", None, None, "enabled")
    rm.update_twin("durable", {"tags": {"kept": True}})
    assert local_hub.kill() == -9
    local_hub.start()
    rm = local_hub.registry_manager()
    assert rm.get_device("durable").device_id == "durable"
    assert rm.get_twin("durable").tags == {"kept": True}


def test_acknowledged_telemetry_survives_sigkill(local_hub):
    # IoT Hub may deliver a QoS 1 message twice, never drop one it acknowledged: every
    # message whose send_message returned (PUBACK) is in the log after a crash.
    rm = local_hub.registry_manager()
    key = rm.create_device_with_sas("sender", None, None, "enabled").authentication
    connection_string = (
        f"HostName={local_hub.hostname};DeviceId=sender;"
        f"SharedAccessKey={key.symmetric_key.primary_key}"
    )
    client = IoTHubDeviceClient.create_from_connection_string(
        connection_string,
        server_verification_cert=Path(local_hub.ca_cert).read_text(),
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", local_hub.proxy_port),
    )
    count = 300
    try:
        client.connect()
        for i in range(count):
            client.send_message(Message(f"m{i}"))  # returns on the hub's PUBACK
        assert local_hub.kill() == -9  # right after the last PUBACK
    finally:
        # The hub is gone: the SDK's own goodbye may find no connection to close.
        with contextlib.suppress(NoConnectionError):
            client.shutdown()
    local_hub.start()
    response = requests.get(
        f"https://{local_hub.hostname}:{local_hub.rest_port}/_localhub/telemetry/sender",
        params={"limit": "1"},
        headers={"Authorization": auth_header(local_hub.service_connection_string)},
        verify=local_hub.ca_cert,
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["count"] == count


_PROXIED_CLIENT = textwrap.dedent(
    """
    import json, sys
    from azure.iot.hub import IoTHubRegistryManager

    rm = IoTHubRegistryManager.from_connection_string(sys.argv[1])
    device = rm.create_device_with_sas("proxied", None, None, "enabled")
    twin = rm.update_twin("proxied", {"tags": {"via": "env"}})
    print(json.dumps({"device": device.device_id, "tags": twin.tags}))
    """
)


def test_sdk_in_another_process_reaches_the_hub_through_https_proxy(local_hub):
    # HostName without a port, HTTPS_PROXY and REQUESTS_CA_BUNDLE from the environment:
    # the SDK is configured only the ways a user would (B.1).
    result = subprocess.run(
        [sys.executable, "-c", _PROXIED_CLIENT, local_hub.connection_string_without_port()],
        env=local_hub.proxy_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"device": "proxied", "tags": {"via": "env"}}
    # The same hub, reached directly with the port in HostName (and in the token's sr).
    assert local_hub.registry_manager().get_twin("proxied").tags == {"via": "env"}
    via_proxy = local_hub.registry_manager(via_proxy=True)
    assert via_proxy.get_device("proxied").device_id == "proxied"


def test_two_hubs_side_by_side(start_local_hub):
    first, second = start_local_hub("one"), start_local_hub("two")
    assert first.rest_port != second.rest_port
    first.registry_manager().create_device_with_sas("only-in-one", None, None, "enabled")
    with pytest.raises(HttpOperationError) as info:
        second.registry_manager().get_device("only-in-one")
    assert info.value.response.status_code == 404
    # Keys differ per hub: one hub's connection string is refused by the other.
    with pytest.raises(HttpOperationError) as info:
        second.registry_manager(
            first.service_connection_string.replace(str(first.rest_port), str(second.rest_port))
        ).get_device_registry_statistics()
    assert info.value.response.status_code == 401


def test_startup_failure_exits_1_without_a_ready_line(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    hub = HubProcess(blocker)
    with pytest.raises(Exception, match="without a ready line"):
        hub.start(timeout=30)
    assert hub.returncode == 1
    assert "could not start" in hub.stderr_tail()


def test_bad_arguments_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "twin_explorer", "hub", "--rest-port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "port out of range" in result.stderr
    assert result.stdout == ""


def test_the_hub_command_never_imports_qt():
    probe = textwrap.dedent(
        """
        import sys
        from twin_explorer.cli import build_parser
        import twin_explorer.localhub.runtime.server
        args = build_parser().parse_args(["hub", "--rest-port", "0", "--mqtt-port", "off"])
        assert args.mqtt_port is None and args.rest_port == 0 and args.func
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "qasync"))
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
