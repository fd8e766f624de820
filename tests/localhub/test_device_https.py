"""The device HTTPS API on the wire: telemetry, C2D polling, auth, IoT Hub's limits.

Raw requests (aiohttp) for what the SDKs hide: exact statuses, error codes and headers.
The Node SDK drives the same routes in ``test_device_https_node.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from azure.iot.device import ProxyOptions
from azure.iot.device.exceptions import ClientError

from tests.hubfixtures import RestClient, assert_error
from tests.localhub.mqtt_support import ensure_identity, sdk_client
from twin_explorer.connection.sas import device_resource_uri, generate_device_token
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.server import HubServer

BATCH = "application/vnd.microsoft.iothub.json"
LIMIT = 256 * 1024


def _token(hub: HubServer, device_id: str, module_id: str | None = None, **kwargs) -> str:
    core = hub.core
    found = core.get_module(device_id, module_id) if module_id else core.get_device(device_id)
    key = kwargs.pop("key", None) or found["authentication"]["symmetricKey"]["primaryKey"]
    resource = device_resource_uri(hub.hostname, device_id, module_id)
    return generate_device_token(resource, key, **kwargs)


async def _post(
    rest: RestClient, path: str, auth: str, data: bytes, headers: dict | None = None
) -> tuple:
    return await rest.request("POST", path, data=data, auth=auth, headers=headers or {})


async def test_one_message_keeps_its_properties_and_moves_only_last_activity(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    ensure_identity(hub_server.core, "d1")
    headers = {
        "iothub-app-Unit": "Celsius",
        "iothub-app-k": "v",
        "IoTHub-MessageId": "m-1",
        "IoTHub-CorrelationId": "c-1",
        "iothub-contenttype": "application/json",
        "iothub-contentencoding": "utf-8",
        "iothub-to": "/devices/d1/messages/events",
        "Content-Type": "application/octet-stream",
    }
    status, _, body = await _post(
        hub_rest, "/devices/d1/messages/events", _token(hub_server, "d1"), b"\x00{}", headers
    )
    assert (status, body) == (204, b"")
    (message,) = hub_server.core.telemetry("d1")
    assert message["body"] == b"\x00{}"
    assert message["properties"] == {"Unit": "Celsius", "k": "v"}
    assert message["systemProperties"] == {
        "$.mid": "m-1",
        "$.cid": "c-1",
        "$.ct": "application/json",
        "$.ce": "utf-8",
    }
    device = hub_server.core.get_device("d1")
    assert device["connectionState"] == "Disconnected"  # HTTP clients never connect
    assert device["lastActivityTime"] != "0001-01-01T00:00:00Z"


async def test_a_module_sends_on_its_own_path_with_its_own_token(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    ensure_identity(hub_server.core, "d1", "m1")
    path = "/devices/d1/modules/m1/messages/events"
    status, *_ = await _post(hub_rest, path, _token(hub_server, "d1", "m1"), b"hi")
    assert status == 204
    assert [m["body"] for m in hub_server.core.telemetry("d1", "m1")] == [b"hi"]
    # The device's token does not open its module (nor the module's the device).
    await assert_error(
        await _post(hub_rest, path, _token(hub_server, "d1"), b"x"),
        401,
        "IotHubUnauthorizedAccess",
    )
    await assert_error(
        await _post(hub_rest, "/devices/d1/messages/events", _token(hub_server, "d1", "m1"), b"x"),
        401,
        "IotHubUnauthorizedAccess",
    )


async def test_a_batch_keeps_each_message_and_its_properties(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    ensure_identity(hub_server.core, "d1")
    batch = [
        {"body": base64.b64encode(b"\xff\x00").decode(), "properties": {"iothub-app-a": "1"}},
        {
            "body": "plain",
            "base64Encoded": False,
            "properties": {"iothub-messageid": "m2", "dt-subject": "thermostat1"},
        },
        {"body": ""},
    ]
    status, *_ = await _post(
        hub_rest,
        "/devices/d1/messages/events",
        _token(hub_server, "d1"),
        json.dumps(batch).encode(),
        {"Content-Type": BATCH},
    )
    assert status == 204
    messages = hub_server.core.telemetry("d1")
    assert [(m["body"], m["properties"]) for m in messages] == [
        (b"\xff\x00", {"a": "1"}),
        (b"plain", {"dt-subject": "thermostat1"}),
        (b"", {}),
    ]
    assert messages[1]["systemProperties"] == {"$.mid": "m2"}


async def test_bad_batches_are_400_and_keep_nothing(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    ensure_identity(hub_server.core, "d1")
    token = _token(hub_server, "d1")
    bad = {
        b"{}": "JSON array",
        b"[]": "no messages",
        b'[{"body": "not base64!"}]': "not base64",
        b'[{"body": 1}]': "no body",
        b'[{"body": "", "properties": {"iothub-app-a": 1}}]': "must be a string",
        b'[{"body": "", "properties": []}]': "JSON object",
        b'[{"body": ""}, 2]': "Message 1",
        b'[{"body": "a"}': "not valid JSON",
    }
    for body, words in bad.items():
        response = await _post(
            hub_rest, "/devices/d1/messages/events", token, body, {"Content-Type": BATCH}
        )
        await assert_error(response, 400, "ArgumentInvalid", words)
    assert hub_server.core.telemetry_count("d1") == 0


async def test_iot_hubs_size_limits_per_message_and_per_batch(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    ensure_identity(hub_server.core, "d1")
    token = _token(hub_server, "d1")
    path = "/devices/d1/messages/events"
    # Properties count: the body plus the names and values of application properties.
    exact = await _post(hub_rest, path, token, b"x" * (LIMIT - 2), {"iothub-app-k": "v"})
    assert exact[0] == 204
    over = await _post(hub_rest, path, token, b"x" * (LIMIT - 1), {"iothub-app-k": "v"})
    await assert_error(over, 413, "MessageTooLarge", str(LIMIT + 1))
    half = base64.b64encode(b"y" * (LIMIT // 2 + 1)).decode()
    batch = json.dumps([{"body": half}, {"body": half}]).encode()
    response = await _post(hub_rest, path, token, batch, {"Content-Type": BATCH})
    await assert_error(response, 413, "MessageTooLarge", "batch")
    # IoT Hub counts bytes only; this hub also bounds how many messages one batch holds.
    many = json.dumps([{"body": ""}] * 1001).encode()
    response = await _post(hub_rest, path, token, many, {"Content-Type": BATCH})
    await assert_error(response, 413, "MessageTooLarge", "1001 messages")
    full = json.dumps([{"body": ""}] * 1000).encode()
    assert (await _post(hub_rest, path, token, full, {"Content-Type": BATCH}))[0] == 204
    # Past the hub's request limit the body is never read, and still IoT Hub's error.
    huge = await _post(hub_rest, path, token, b"z" * (2 << 20))
    await assert_error(huge, 413, "MessageTooLarge")
    assert hub_server.core.telemetry_count("d1") == 1001


async def test_credentials_as_iot_hub_takes_them(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    core = hub_server.core
    ensure_identity(core, "d1")
    ensure_identity(core, "d2")
    path = "/devices/d1/messages/events"
    device_key = core.policy_keys("device")[0]
    host_token = generate_device_token(hub_server.hostname, device_key, policy="device")
    assert (await _post(hub_rest, path, host_token, b"policy"))[0] == 204
    service_key = core.policy_keys("service")[0]
    refused = {
        "another device's token": _token(hub_server, "d2"),
        "a wrong key": _token(hub_server, "d1", key=base64.b64encode(b"k" * 32).decode()),
        "an expired token": _token(hub_server, "d1", ttl=-10),
        "a policy without DeviceConnect": generate_device_token(
            hub_server.hostname, service_key, policy="service"
        ),
        "no token": "",
    }
    for why, token in refused.items():
        status, headers, body = await _raw_post(hub_rest, path, token)
        assert (status, headers["iothub-errorcode"]) == (401, "IotHubUnauthorizedAccess"), why
        assert b"sig=" not in body  # no token echoed back
    assert [m["body"] for m in core.telemetry("d1")] == [b"policy"]


async def _raw_post(rest: RestClient, path: str, token: str) -> tuple:
    """A POST with exactly this Authorization header (none when empty)."""
    headers = {"Authorization": token} if token else {}
    async with rest.session.post(rest.base_url + path, data=b"x", headers=headers) as response:
        return response.status, response.headers, await response.read()


def _device_d1(hub: HubServer) -> tuple[HubCore, str]:
    """The core, with device d1 registered, and a token of d1's."""
    ensure_identity(hub.core, "d1")
    return hub.core, _token(hub, "d1")


async def _receive(rest: RestClient, token: str, **headers: str) -> tuple:
    return await rest.request(
        "GET", "/devices/d1/messages/devicebound", auth=token, headers=headers
    )


async def test_c2d_poll_complete_reject_and_abandon(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    core, token = _device_d1(hub_server)
    assert (await _receive(hub_rest, token))[:1] == (204,)
    # Where the AMQP service path lands, send_c2d_message takes over from send_c2d.
    core.send_c2d(
        "d1",
        b"first",
        {"k": "v", "$.cid": "c1", "$.ct": "text/plain", "iothub-ack": "full"},
        message_id="m1",
    )
    core.send_c2d("d1", b"second", {"line": "a\nb"})
    status, headers, body = await _receive(hub_rest, token)
    assert (status, body) == (200, b"first")
    etag = headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert headers["iothub-messageid"] == "m1"
    assert headers["iothub-to"] == "/devices/d1/messages/deviceBound"
    assert headers["iothub-correlationid"] == "c1"
    assert headers["iothub-ack"] == "full"
    assert headers["iothub-app-k"] == "v"
    assert headers["Content-Type"] == "text/plain"
    assert headers["iothub-deliverycount"] == "0"
    assert headers["iothub-sequencenumber"] == "1"
    lock = etag.strip('"')
    bound = "/devices/d1/messages/deviceBound/"
    # The first is locked: the next poll gets the second, its newline percent-encoded.
    status, headers, body = await _receive(hub_rest, token)
    assert (status, body, headers["iothub-app-line"]) == (200, b"second", "a%0Ab")
    assert headers["iothub-sequencenumber"] == "2"
    second = headers["ETag"].strip('"')
    assert (await _receive(hub_rest, token))[0] == 204
    assert (await hub_rest.request("DELETE", bound + lock, auth=token))[0] == 204
    await assert_error(
        await hub_rest.request("DELETE", bound + lock, auth=token),
        412,
        "DeviceMessageLockLost",
    )
    # Abandon: it comes again, delivered twice now; then reject dead-letters it.
    assert (await hub_rest.request("POST", bound + second + "/abandon", auth=token))[0] == 204
    status, headers, body = await _receive(hub_rest, token)
    assert (status, body, headers["iothub-deliverycount"]) == (200, b"second", "1")
    again = headers["ETag"].strip('"')
    rejected = await hub_rest.request("DELETE", bound + again + "?reject", auth=token)
    assert rejected[0] == 204
    assert core.c2d.depth("d1") == 0
    assert [m.body for m in core.c2d.dead_letters] == [b"second"]
    await assert_error(
        await hub_rest.request("POST", bound + "nosuch/abandon", auth=token),
        412,
        "DeviceMessageLockLost",
    )


async def test_a_lock_runs_out_after_the_time_the_device_asked_for(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    core, token = _device_d1(hub_server)
    core.send_c2d("d1", b"once")
    status, headers, _ = await _receive(hub_rest, token, **{"IotHub-MessageLockTimeout": "1"})
    assert status == 200
    lock = headers["ETag"].strip('"')
    deadline = time.monotonic() + 10
    while (again := await _receive(hub_rest, token))[0] == 204:
        assert time.monotonic() < deadline, "the lock never ran out"
        await asyncio.sleep(0.1)
    assert again[2] == b"once"
    await assert_error(
        await hub_rest.request("DELETE", f"/devices/d1/messages/deviceBound/{lock}", auth=token),
        412,
        "DeviceMessageLockLost",
    )
    bad = await _receive(hub_rest, token, **{"IotHub-MessageLockTimeout": "lots"})
    await assert_error(bad, 400, "ArgumentInvalid", "iothub-messagelocktimeout")


async def test_file_upload_is_refused_as_a_hub_without_storage_refuses_it(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    """No blob store stands behind the local hub: the SDK's first upload step fails with
    IoT Hub's 400 (errorCode 400022) in the nested envelope, after the usual auth."""
    connection_string = ensure_identity(hub_server.core, "d1")
    assert hub_server.proxy_port is not None
    proxy = ProxyOptions("HTTP", "127.0.0.1", hub_server.proxy_port)
    ca_pem = hub_server.certificates.ca_cert.read_text()
    async with sdk_client(connection_string, ca_pem, proxy) as device:
        with pytest.raises(ClientError) as refused:
            await device.get_storage_info_for_blob("photo.jpg")
    assert "400" in str(refused.value.__cause__)
    status, _, body = await hub_rest.request(
        "POST", "/devices/d1/files", json_body={"blobName": "a"}, auth=_token(hub_server, "d1")
    )
    assert status == 400
    inner = json.loads(json.loads(body)["Message"])
    assert inner["errorCode"] == 400022
    assert "storage account" in inner["message"]
    # Credentials first: someone else's token is 401, not a hint about storage.
    ensure_identity(hub_server.core, "d2")
    other = _token(hub_server, "d2")
    for path in ("/devices/d1/files", "/devices/d1/files/notifications"):
        response = await hub_rest.request("POST", path, data=b"{}", auth=other)
        await assert_error(response, 401, "IotHubUnauthorizedAccess")
    notified = await hub_rest.request(
        "POST", "/devices/d1/files/notifications", data=b"{}", auth=_token(hub_server, "d1")
    )
    assert json.loads(json.loads(notified[2])["Message"])["errorCode"] == 400022


async def test_dotnet_asks_for_its_lock_time_in_the_query(
    hub_server: HubServer, hub_rest: RestClient
) -> None:
    """.NET's HttpTransportHandler puts iothub-messagelocktimeout in the query string."""
    core, token = _device_d1(hub_server)
    core.send_c2d("d1", b"m")
    path = "/devices/d1/messages/deviceBound?api-version=2021-04-12&iothub-messagelocktimeout="
    bad = await hub_rest.request("GET", path + "0", auth=token, api_version=None)
    await assert_error(bad, 400, "ArgumentInvalid", "between 1 and 300")
    status, _, body = await hub_rest.request("GET", path + "60", auth=token, api_version=None)
    assert (status, body) == (200, b"m")


async def test_a_disabled_device_is_refused(hub_server: HubServer, hub_rest: RestClient) -> None:
    core, token = _device_d1(hub_server)
    device = core.get_device("d1")
    core.put_device("d1", {**device, "status": "disabled"}, "*")
    response = await _post(hub_rest, "/devices/d1/messages/events", token, b"x")
    await assert_error(response, 401, "IotHubUnauthorizedAccess", "disabled")
    await assert_error(await _receive(hub_rest, token), 401, "IotHubUnauthorizedAccess")
