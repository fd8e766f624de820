"""Every listener closes what idles or half-sends, and a flood of idle sockets beyond the
connection cap neither locks real SDK clients out nor floods the log.

The hub runs as a real process; short timeouts come from its command-line flags, and a
low descriptor limit from ``prlimit`` around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.iot.device import IoTHubModuleClient, ProxyOptions

from tests.hubfixtures import LocalHubProcess, auth_header
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.transports.listeners import Limits

SHORT = ["--handshake-timeout", "1", "--header-timeout", "1", "--idle-timeout", "2"]
GRACE = 4.0  # seconds past a timeout within which the socket must be gone


def _tls(hub: LocalHubProcess, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=hub.ca_cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Read until the hub closes the socket; how long that took (fails past ``seconds``)."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        pass
    except TimeoutError:
        pytest.fail(f"still open after {seconds} s")
    finally:
        sock.close()
    return time.monotonic() - start


def test_idle_and_half_sent_connections_are_closed_on_every_listener(start_local_hub):
    hub = start_local_hub(extra_args=SHORT)
    rest, mqtt, proxy = hub.rest_port, hub.mqtt_port, hub.proxy_port
    cases: dict[str, socket.socket] = {
        "REST, no TLS handshake": socket.create_connection(("127.0.0.1", rest)),
        "REST, TLS then nothing": _tls(hub, rest),
        "MQTT, TLS then nothing": _tls(hub, mqtt),
        "proxy, nothing": socket.create_connection(("127.0.0.1", proxy)),
    }
    half = _tls(hub, rest)
    half.sendall(b"GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n")
    cases["REST, half a request head"] = half
    half_body = _tls(hub, rest)
    half_body.sendall(
        b"PUT /devices/d1?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    cases["REST, half a body"] = half_body
    half_mqtt = _tls(hub, mqtt)
    half_mqtt.sendall(b"\x10\x40\x00\x04MQ")  # a CONNECT cut short
    cases["MQTT, half a CONNECT"] = half_mqtt
    half_proxy = socket.create_connection(("127.0.0.1", proxy))
    half_proxy.sendall(b"CONNECT localhost:8883 HTTP/1.1\r\n")
    cases["proxy, half a CONNECT"] = half_proxy

    for name, sock in cases.items():
        assert _closed_within(sock, 1 + GRACE) >= 0, name

    # A REST connection that made a request, then idles, goes after the idle timeout.
    kept = _tls(hub, rest)
    kept.sendall(b"GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert kept.recv(4096).startswith(b"HTTP/1.1 401")
    took = _closed_within(kept, 2 + GRACE)
    assert took >= 1.0, "an idle keep-alive connection gets its idle timeout, not less"
    assert hub.running


class LimitedHub(LocalHubProcess):
    """The hub under a hard descriptor limit, as ``ulimit -n`` would set it."""

    def __init__(self, data_dir: Path, descriptors: int, extra_args: list[str]) -> None:
        super().__init__(data_dir, extra_args=extra_args)
        self.descriptors = descriptors

    def command(self) -> list[str]:
        limit = f"--nofile={self.descriptors}:{self.descriptors}"
        return ["prlimit", limit, "--", *super().command()]


@pytest.fixture
def limited_hub(hub_data_dir) -> Iterator[LimitedHub]:
    # Timeouts far beyond the test, so only the cap can make room for the SDK clients.
    hub = LimitedHub(
        hub_data_dir("limited"),
        descriptors=128,
        extra_args=["--handshake-timeout", "300", "--header-timeout", "300"],
    )
    hub.start()
    yield hub
    hub.cleanup()


def test_more_idle_sockets_than_the_cap_leave_sdk_clients_served(limited_hub):
    hub = limited_hub
    manager = hub.registry_manager()
    manager.create_device_with_sas("d1", "", "", "enabled")
    module = manager.create_module_with_sas("d1", "m1", "", "", "")
    key = module.authentication.symmetric_key.primary_key

    idle: list[socket.socket] = []
    try:
        ports = [hub.rest_port, hub.mqtt_port, hub.proxy_port]
        for i in range(150):  # more than the descriptor limit, let alone the cap
            idle.append(socket.create_connection(("127.0.0.1", ports[i % 3]), timeout=10))

        # The service SDK: a registry call on a fresh connection.
        fresh = hub.registry_manager()
        assert fresh.get_device("d1").device_id == "d1"
        # The device SDK: a module client through the proxy to MQTT, twin round trip.
        client = IoTHubModuleClient.create_from_connection_string(
            f"HostName=localhost;DeviceId=d1;ModuleId=m1;SharedAccessKey={key}",
            server_verification_cert=Path(hub.ca_cert).read_text(),
            proxy_options=ProxyOptions("HTTP", "127.0.0.1", hub.proxy_port),
        )
        try:
            client.connect()
            client.patch_twin_reported_properties({"alive": True})
            assert client.get_twin()["reported"]["alive"] is True
        finally:
            client.shutdown()
        assert fresh.get_module_twin("d1", "m1").properties.reported["alive"] is True
    finally:
        for sock in idle:
            with contextlib.suppress(OSError):
                sock.close()

    said = hub.stderr_tail(200_000)
    assert "Too many open files" not in said and "Traceback" not in said
    assert "ERROR" not in said, said[-3000:]
    gate_lines = [line for line in said.splitlines() if "localhub.transports.listeners" in line]
    assert len(gate_lines) == 1 and "the limit" in gate_lines[0]  # the cap: said once
    assert hub.running


def _get_devices(sock: ssl.SSLSocket, authorization: str) -> bytes:
    sock.sendall(
        b"GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n"
        + f"Authorization: {authorization}\r\n\r\n".encode()
    )
    return sock.recv(65536)


def test_out_of_descriptors_in_accept_is_one_line_and_open_connections_stay_served(
    hub_data_dir,
):
    # A cap set above the descriptor limit, so accept itself runs out (EMFILE).
    hub = LimitedHub(
        hub_data_dir("starved"), descriptors=64, extra_args=["--max-connections", "500"]
    )
    hub.start()
    flood: list[socket.socket] = []
    try:
        authorization = auth_header(hub.service_connection_string)
        kept = _tls(hub, hub.rest_port)
        assert _get_devices(kept, authorization).startswith(b"HTTP/1.1 200")
        # Connect until accept runs out of descriptors (64 is the limit; the hub holds
        # about 17 of its own); once it does, further connects may hang: short timeouts.
        deadline = time.monotonic() + 30
        while "accepting connections failed" not in hub.stderr_tail():
            assert time.monotonic() < deadline, "accept never ran out of descriptors"
            with contextlib.suppress(TimeoutError):
                flood.append(socket.create_connection(("127.0.0.1", hub.rest_port), timeout=0.5))
        # The connection it already has is still served while accept fails.
        assert _get_devices(kept, authorization).startswith(b"HTTP/1.1 200")
        kept.close()
        for sock in flood:
            sock.close()
        flood.clear()
        # Descriptors free again: new connections are accepted (after asyncio's pause).
        assert hub.registry_manager().get_device_registry_statistics() is not None
    finally:
        for sock in flood:
            sock.close()
        hub.cleanup()
    said = hub.stderr_tail(200_000)
    assert "Traceback" not in said, said[-3000:]
    failed = [line for line in said.splitlines() if "accepting connections failed" in line]
    assert len(failed) == 1, said[-3000:]
    assert "Too many open files" in failed[0]


async def test_tls_handshakes_start_at_a_bounded_rate(hub_data_dir):
    # A burst of new connections waits its turn for the costly handshake instead of
    # taking the loop from everyone at once; each still gets through in time.
    rate, burst = 10.0, 30
    limits = Limits(handshakes_per_second=rate)
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=None, proxy_port=None, limits=limits
    ) as server:
        context = ssl.create_default_context(cafile=str(server.certificates.ca_cert))
        start = time.monotonic()

        async def handshake() -> float:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", server.rest_port, ssl=context, server_hostname="localhost"
            )
            took = time.monotonic() - start
            writer.close()
            return took

        done = sorted(await asyncio.gather(*(handshake() for _ in range(burst))))
    # The bucket starts full (rate tokens), then refills at rate per second.
    assert done[-1] >= (burst - rate) / rate * 0.9, done
    assert done[-1] < limits.handshake_timeout
