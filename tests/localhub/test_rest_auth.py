"""Service authorization on the REST API (B.2, B.9): signatures, policies and rights."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import pytest
from azure.iot.hub.sastoken import SasToken
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import auth_header, server_registry_manager, trusting_registry_manager


def _with_key(connection_string: str, key: str) -> str:
    return ";".join(
        f"SharedAccessKey={key}" if part.startswith("SharedAccessKey=") else part
        for part in connection_string.split(";")
    )


def _parts(connection_string: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in connection_string.split(";"))


async def _status(fn, *args) -> tuple[int, str]:
    with pytest.raises(HttpOperationError) as info:
        await asyncio.to_thread(fn, *args)
    return info.value.response.status_code, info.value.response.headers.get("iothub-errorcode")


async def test_wrong_key_is_401(hub_server):
    forged = _with_key(
        hub_server.service_connection_string(), base64.b64encode(os.urandom(32)).decode()
    )
    rm = trusting_registry_manager(forged, hub_server.certificates.ca_cert)
    assert await _status(rm.get_device_registry_statistics) == (401, "IotHubUnauthorizedAccess")
    assert await _status(rm.create_device_with_sas, "d1", None, None, "enabled") == (
        401,
        "IotHubUnauthorizedAccess",
    )


async def test_registry_read_policy_cannot_create(hub_server):
    reader = server_registry_manager(hub_server, "registryRead")
    assert await _status(reader.create_device_with_sas, "d1", None, None, "enabled") == (
        401,
        "IotHubUnauthorizedAccess",
    )
    # ... but it can read the registry and query (B.9).
    owner = server_registry_manager(hub_server)
    await asyncio.to_thread(owner.create_device_with_sas, "d1", None, None, "enabled")
    assert (await asyncio.to_thread(reader.get_device, "d1")).device_id == "d1"
    result = await asyncio.to_thread(reader.query_iot_hub, {"query": "SELECT * FROM devices"})
    assert [twin.device_id for twin in result.items] == ["d1"]
    # Twins need Service Connect, which registryRead lacks.
    assert (await _status(reader.get_twin, "d1"))[0] == 401


async def test_service_policy_reaches_twins_but_not_the_registry(hub_server):
    owner = server_registry_manager(hub_server)
    await asyncio.to_thread(owner.create_device_with_sas, "d1", None, None, "enabled")
    service = server_registry_manager(hub_server, "service")
    assert (await asyncio.to_thread(service.get_twin, "d1")).device_id == "d1"
    assert (await asyncio.to_thread(service.get_service_statistics)).connected_device_count == 0
    assert (await _status(service.get_device, "d1"))[0] == 401
    assert (await _status(service.delete_device, "d1"))[0] == 401


@pytest.mark.parametrize("with_port", [True, False])
async def test_token_resource_with_or_without_port(hub_server, hub_rest, with_port):
    # The SDK signs sr=quote_plus(HostName): "localhost%3A<port>" when the connection
    # string names the port, "localhost" when it reaches the hub through the proxy.
    parts = _parts(hub_server.service_connection_string())
    host = parts["HostName"] if with_port else hub_server.hostname
    token = str(SasToken(host, parts["SharedAccessKey"], parts["SharedAccessKeyName"]))
    assert ("%3A" in token) is with_port
    status, body = await hub_rest.json("GET", "/statistics/devices", auth=token)
    assert status == 200 and body["totalDeviceCount"] == 0


async def test_token_for_another_hub_is_401(hub_server, hub_rest):
    parts = _parts(hub_server.service_connection_string())
    token = str(SasToken("otherhub.azure-devices.net", parts["SharedAccessKey"], "iothubowner"))
    status, headers, body = await hub_rest.request("GET", "/statistics/devices", auth=token)
    assert status == 401 and headers["iothub-errorcode"] == "IotHubUnauthorizedAccess"
    assert b"ErrorCode:IotHubUnauthorizedAccess;" in body


async def test_expired_missing_and_malformed_tokens_are_401(hub_server, hub_rest):
    parts = _parts(hub_server.service_connection_string())
    expired = SasToken(parts["HostName"], parts["SharedAccessKey"], "iothubowner", ttl=-10)
    assert expired.expiry_time < time.time()
    good = auth_header(hub_server.service_connection_string())
    for auth in (
        str(expired),
        "SharedAccessSignature garbage",
        "Bearer abc",
        good.replace("skn=iothubowner", "skn=nosuchpolicy"),
        good.replace("sig=", "sig=x"),
    ):
        status, headers, _ = await hub_rest.request("GET", "/devices", auth=auth)
        assert (status, headers["iothub-errorcode"]) == (401, "IotHubUnauthorizedAccess"), auth
    # No header at all.
    async with hub_rest.session.get(f"{hub_rest.base_url}/devices") as response:
        assert response.status == 401
