"""HubServer: lifetime, ports, the method-invoker seam and the CONNECT proxy."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import time
import warnings
from typing import Any

import aiohttp
import pytest

from tests.hubfixtures import (
    READY_KEYS,
    RestClient,
    server_registry_manager,
    strip_port,
    trusting_registry_manager,
)
from twin_explorer import __version__
from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.server import HubServer


class FakeMqtt:
    """Stands in for the MQTT server: a real listener that serves nothing, and devices
    that join the core's presence and answer method requests as the test scripts."""

    name = "MQTT"
    iothub_port = 8883

    def __init__(self, core: HubCore, tls: Any) -> None:
        self.core, self.tls = core, tls
        self.calls: list[tuple] = []
        self.answer: tuple[int, Any] = (200, {"ok": True})
        self.block = False
        self.server: asyncio.Server | None = None
        self.closed = False
        self.called = asyncio.Event()

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(lambda r, w: w.close(), host, port)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.closed = True
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def connect(self, device_id: str, module_id: str | None = None) -> None:
        self.core.presence.connect(
            Identity(device_id, module_id), _FakeDevice(self, device_id, module_id)
        )


class _FakeDevice:
    """A delivery target: records method requests and answers them through the core."""

    accepts_methods = True
    accepts_c2d = False

    def __init__(self, fake: FakeMqtt, device_id: str, module_id: str | None) -> None:
        self.fake, self.identity = fake, Identity(device_id, module_id)

    def deliver_method(self, name: str, rid: str, payload: bytes) -> bool:
        fake = self.fake
        # The response timeout the caller gave, as the core's deadline for this request.
        deadline = fake.core.methods.deadline(rid)
        assert deadline is not None
        answer_within = round(deadline - asyncio.get_running_loop().time())
        identity = self.identity
        fake.calls.append(
            (identity.device_id, identity.module_id, name, json.loads(payload), answer_within)
        )
        fake.called.set()
        if not fake.block:
            status, body = fake.answer
            devices = fake.core.devices
            asyncio.get_running_loop().call_soon(
                devices.method_response, self.identity, rid, status, json.dumps(body).encode()
            )
        return True

    def deliver_desired(self, patch: dict) -> None:
        pass

    def deliver_c2d(self, message: Any) -> bool:
        return False

    def close(self, reason: str) -> None:
        pass


def _fake_factory(store: list[FakeMqtt]):
    def factory(core: HubCore, tls: Any) -> FakeMqtt:
        fake = FakeMqtt(core, tls)
        store.append(fake)
        return fake

    return factory


def _other_tasks() -> set[asyncio.Task]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_start_ready_info_and_idempotent_close(hub_data_dir):
    before = _other_tasks()
    hub = HubServer(hub_data_dir(), rest_port=0, mqtt_port=None, proxy_port=0)
    await hub.start()
    info = hub.ready_info()
    assert set(info) == READY_KEYS
    assert info["hostname"] == "localhost" and info["mqtt_port"] is None
    assert info["version"] == __version__
    assert f"HostName=localhost:{info['rest_port']};" in info["service_connection_string"]
    assert "SharedAccessKeyName=iothubowner" in info["service_connection_string"]
    assert (
        info["ca_cert"].endswith("ca.pem")
        and (hub_data_dir()).resolve().as_posix() in info["ca_cert"]
    )
    ports = (info["rest_port"], info["proxy_port"])
    assert not any(_refused(port) for port in ports)
    with pytest.raises(RuntimeError):
        await hub.start()  # one start per HubServer
    await hub.close()
    await hub.close()
    assert all(_refused(port) for port in ports)
    assert _other_tasks() <= before
    with pytest.raises(RuntimeError):
        hub.core  # noqa: B018 - the core is closed with the server


async def test_close_ends_live_connections_and_pending_method_calls(hub_data_dir):
    fakes: list[FakeMqtt] = []
    hub = HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=0, mqtt_factory=_fake_factory(fakes)
    )
    await hub.start()
    hub.core.put_device("d1", {"deviceId": "d1"}, None)
    fakes[0].connect("d1")
    fakes[0].block = True
    client = RestClient.for_server(hub)
    try:
        assert (await client.json("GET", "/devices"))[0] == 200  # a kept-alive connection
        pending = asyncio.create_task(
            client.request("POST", "/twins/d1/methods", json_body={"methodName": "hang"})
        )
        await asyncio.wait_for(fakes[0].called.wait(), 10)
        await asyncio.wait_for(hub.close(), 10)
        assert fakes[0].closed
        # The waiting call was answered, not cut off, and the kept-alive connection is gone.
        status, headers, _ = await asyncio.wait_for(pending, 10)
        assert (status, headers["iothub-errorcode"]) == (503, "ServiceUnavailable")
        with pytest.raises(aiohttp.ClientError):
            await client.json("GET", "/devices")
    finally:
        await client.close()


async def test_a_caller_that_gives_up_ends_the_method_wait(hub_data_dir):
    fakes: list[FakeMqtt] = []
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=None, mqtt_factory=_fake_factory(fakes)
    ) as hub:
        hub.core.put_device("d1", {"deviceId": "d1"}, None)
        fakes[0].connect("d1")
        fakes[0].block = True
        client = RestClient.for_server(hub)
        try:
            call = asyncio.create_task(
                client.request("POST", "/twins/d1/methods", json_body={"methodName": "hang"})
            )
            await asyncio.wait_for(fakes[0].called.wait(), 10)
            call.cancel()  # closes the client's connection mid-request
            async with asyncio.timeout(10):
                await hub.core.methods.wait_idle()
            assert hub.core.methods.pending_count == 0
        finally:
            await client.close()
        # The hub itself carries on.
        assert hub.core.get_device("d1")["deviceId"] == "d1"


async def test_method_invoker_seam(hub_data_dir):
    fakes: list[FakeMqtt] = []
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=None, mqtt_factory=_fake_factory(fakes)
    ) as hub:
        fake = fakes[0]
        assert hub.ready_info()["mqtt_port"] is not None and hub.proxy_port is None
        rm = server_registry_manager(hub)
        from azure.iot.hub.models import CloudToDeviceMethod

        await asyncio.to_thread(rm.create_device_with_sas, "d1", None, None, "enabled")
        await asyncio.to_thread(rm.create_module_with_sas, "d1", "m1", None, None, None)
        fake.connect("d1")
        fake.connect("d1", "m1")
        fake.answer = (201, {"rebooted": True})
        result = await asyncio.to_thread(
            rm.invoke_device_module_method,
            "d1",
            "m1",
            CloudToDeviceMethod(method_name="reboot", payload={"in": 5}),
        )
        assert (result.status, result.payload) == (201, {"rebooted": True})
        # The SDK's defaults: responseTimeoutInSeconds 30, connectTimeoutInSeconds 0.
        assert fake.calls[-1] == ("d1", "m1", "reboot", {"in": 5}, 30)
        from msrest.exceptions import HttpOperationError

        async def fails(device_id: str, method: CloudToDeviceMethod) -> tuple[Any, float]:
            start = time.monotonic()
            with pytest.raises(HttpOperationError) as info:
                await asyncio.to_thread(rm.invoke_device_method, device_id, method)
            return info.value.response, time.monotonic() - start

        fake.block = True  # no answer within the response timeout
        slow = CloudToDeviceMethod(
            method_name="slow",
            payload=None,
            response_timeout_in_seconds=7,
            connect_timeout_in_seconds=2,
        )
        await asyncio.to_thread(rm.create_device_with_sas, "offline", None, None, "enabled")
        offline = CloudToDeviceMethod(
            method_name="late", response_timeout_in_seconds=7, connect_timeout_in_seconds=2
        )
        (response, took), (missing, waited), (at_once, no_wait) = await asyncio.gather(
            fails("d1", slow),
            fails("offline", offline),
            fails("offline", CloudToDeviceMethod(method_name="now")),
        )
        assert response.status_code == 504
        assert response.headers["iothub-errorcode"] == "GatewayTimeout"
        assert '\\"errorCode\\":504101' in response.text
        assert '\\"timeout\\":\\"00:00:07\\"' in response.text
        assert 7 <= took < 9  # the device had the 7 s the caller gave it
        assert fake.calls[-1] == ("d1", None, "slow", "", 7)  # the SDK sends "" for None
        # An offline identity: 404103 once the connect timeout (2 s) ran out, and at once
        # with the default connect timeout 0.
        for refused in (missing, at_once):
            assert refused.status_code == 404
            assert '\\"errorCode\\":404103' in refused.text
        assert 2 <= waited < 4
        assert no_wait < 1.5


async def test_busy_ports_fall_back_to_os_chosen(hub_data_dir, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        caplog.set_level(logging.WARNING, logger="twin_explorer.localhub.runtime.server")
        async with HubServer(
            hub_data_dir(), rest_port=busy, mqtt_port=None, proxy_port=busy
        ) as hub:
            assert hub.rest_port not in (0, busy) and hub.proxy_port not in (0, busy)
            rm = server_registry_manager(hub)
            assert (await asyncio.to_thread(rm.get_service_statistics)).connected_device_count == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"REST port {busy}" in text and "unavailable" in text for text in warnings)
    assert any(f"proxy port {busy}" in text for text in warnings)


async def test_failed_start_closes_what_it_opened(hub_data_dir):
    class Broken(FakeMqtt):
        async def start(self, host: str, port: int) -> int:
            raise RuntimeError("no MQTT today")

    before = _other_tasks()
    hub = HubServer(hub_data_dir(), rest_port=0, mqtt_port=0, mqtt_factory=Broken)
    with pytest.raises(RuntimeError, match="no MQTT today"):
        await hub.start()
    assert not hub.running and _other_tasks() <= before
    # The data dir is free again: a new hub opens it.
    async with HubServer(hub_data_dir(), rest_port=0, mqtt_port=None, proxy_port=None) as again:
        assert again.core.registry_statistics()["totalDeviceCount"] == 0


async def test_sdk_through_the_connect_proxy_without_a_port(hub_server):
    # HostName=localhost: the SDK dials https://localhost (port 443), which only the
    # proxy can route to the REST port; the token's sr then carries no port (B.1, B.2).
    connection_string = strip_port(hub_server.service_connection_string(), "localhost")
    assert "HostName=localhost;" in connection_string
    rm = trusting_registry_manager(
        connection_string,
        hub_server.certificates.ca_cert,
        proxy=f"http://127.0.0.1:{hub_server.proxy_port}",
    )
    device = await asyncio.to_thread(rm.create_device_with_sas, "via-proxy", None, None, "enabled")
    assert device.device_id == "via-proxy"
    twin = await asyncio.to_thread(rm.update_twin, "via-proxy", {"tags": {"route": "proxy"}})
    assert twin.tags == {"route": "proxy"}


async def test_demo_data_is_seeded_once(hub_data_dir):
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=None, proxy_port=None, demo=True
    ) as hub:
        devices = hub.core.list_devices()
        assert devices
        first = devices[0]["deviceId"]
        hub.core.delete_device(first, None)
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=None, proxy_port=None, demo=True
    ) as hub:
        ids = [device["deviceId"] for device in hub.core.list_devices()]
        assert first not in ids and len(ids) == len(devices) - 1


async def test_close_right_after_a_connect_leaves_no_socket_to_the_collector(hub_data_dir):
    # A connection the listener accepts just as the hub closes: asyncio builds its
    # transport a step later, and a server closed in between used to drop the socket.
    hub = HubServer(hub_data_dir(), rest_port=0, mqtt_port=None, proxy_port=0)
    await hub.start()
    ports = (hub.rest_port, hub.proxy_port)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for port in ports:
            _refused(port)
        await hub.close()
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
