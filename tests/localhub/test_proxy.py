"""The CONNECT proxy: request parsing, routing, splicing, teardown, and real MQTT clients."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import socket
import ssl
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest
import socks
from hypothesis import given
from hypothesis import strategies as st

from twin_explorer.localhub.runtime.proxy import (
    ConnectProxy,
    ConnectRequest,
    ProxyRequestError,
    hub_routes,
    parse_connect_request,
)
from twin_explorer.localhub.runtime.tls import CertPaths, ensure_certificates, server_context

TIMEOUT = 10


# --- parsing (no sockets) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"CONNECT localhost:8883 HTTP/1.1\r\nHost: localhost\r\n\r\n", ("localhost", 8883)),
        (b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n", ("::1", 443)),
        (b"CONNECT ::1:443 HTTP/1.0\r\n\r\n", ("::1", 443)),  # PySocks leaves out brackets
        (
            b"CONNECT Hub.Example:443 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
            ("Hub.Example", 443),
        ),
    ],
)
def test_parse_accepts_connect(head: bytes, expected: tuple[str, int]) -> None:
    assert parse_connect_request(head) == ConnectRequest(*expected)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET http://localhost/ HTTP/1.1\r\n\r\n", 405),
        (b"garbage\r\n\r\n", 400),
        (b"CONNECT localhost HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT localhost:0 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT localhost:65536 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT localhost:+443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [::1:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [localhost]:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT a:b:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT user@host:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT localhost:443 HTTP/2.0\r\n\r\n", 400),
        (b"CONNECT  localhost:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT localhost:443 HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"CONNECT localhost:443 HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"CONNECT localhost:443 HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"CONNECT h\xc3\xa9:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT localhost:443 HTTP/1.1\r\n", 400),
    ],
)
def test_parse_refuses(head: bytes, status: int) -> None:
    with pytest.raises(ProxyRequestError) as info:
        parse_connect_request(head)
    assert info.value.status == status


@given(st.binary(max_size=300))
def test_parse_never_fails_other_than_refusing(data: bytes) -> None:
    for head in (data, data + b"\r\n\r\n", b"CONNECT " + data + b"\r\n\r\n"):
        try:
            request = parse_connect_request(head)
        except ProxyRequestError as exc:
            assert exc.status in (400, 405)
        else:
            assert 0 < request.port < 65536


_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)


@given(_hosts, st.integers(1, 65535))
def test_parse_round_trips_targets(host: str, port: int) -> None:
    head = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    assert parse_connect_request(head) == ConnectRequest(host.strip("[]"), port)


def test_hub_routes_map_only_hub_ports_of_hub_names() -> None:
    route = hub_routes(
        ["LocalHost", "127.0.0.1", "[::1]"], ("127.0.0.1", 1001), ("127.0.0.1", 1002)
    )
    assert route("localhost", 8883) == ("127.0.0.1", 1001)
    assert route("LOCALHOST", 443) == ("127.0.0.1", 1002)
    assert route("::1", 443) == ("127.0.0.1", 1002)
    assert route("0:0::1", 8883) == ("127.0.0.1", 1001)
    assert route("127.0.0.1", 8883) == ("127.0.0.1", 1001)
    assert route("localhost", 22) is None
    assert route("example.com", 443) is None
    no_mqtt = hub_routes(["localhost"], None, ("127.0.0.1", 1002))
    assert no_mqtt("localhost", 8883) is None
    assert no_mqtt("localhost", 443) == ("127.0.0.1", 1002)


# --- over real sockets --------------------------------------------------------------------


@dataclass
class EchoServer:
    """Echoes everything back, then closes once the client has half-closed."""

    port: int = 0
    accepted: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> EchoServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._echo(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def wait_idle(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self._tasks), TIMEOUT)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = await EchoServer().start()
    yield server
    await server.close()


class RecordingRoutes:
    """Routes that remember every question, to prove what the proxy asked for."""

    def __init__(self, table: dict[tuple[str, int], tuple[str, int]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> tuple[str, int] | None:
        self.asked.append((host, port))
        return self.table.get((host, port))


@pytest.fixture
def routes(echo: EchoServer) -> RecordingRoutes:
    upstream = ("127.0.0.1", echo.port)
    return RecordingRoutes({("localhost", 8883): upstream, ("::1", 443): upstream})


@pytest.fixture
async def proxy(routes: RecordingRoutes) -> AsyncIterator[ConnectProxy]:
    server = ConnectProxy(routes, header_timeout=TIMEOUT)
    await server.start()
    yield server
    await server.close()


async def _request(
    proxy_port: int, head: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Send a raw request head; return the streams and the proxy's response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(head)
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    return reader, writer, response


async def _connect(
    proxy_port: int, target: str, headers: str = ""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{headers}\r\n".encode()
    reader, writer, response = await _request(proxy_port, head)
    assert response == b"HTTP/1.1 200 Connection Established\r\n\r\n"
    return reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _refused(proxy_port: int, head: bytes) -> bytes:
    """The status line of a refusal, after checking the proxy then hangs up."""
    reader, writer, response = await _request(proxy_port, head)
    try:
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        await _close(writer)
    return response.split(b"\r\n", 1)[0]


async def test_tunnel_carries_a_megabyte_both_ways(proxy: ConnectProxy, echo: EchoServer) -> None:
    payload = random.Random(7).randbytes(1 << 20)
    # Proxy-Authorization is accepted and ignored.
    reader, writer = await _connect(proxy.port, "localhost:8883", "Proxy-Authorization: x\r\n")

    async def send() -> None:
        for start in range(0, len(payload), 50_000):
            writer.write(payload[start : start + 50_000])
            await writer.drain()
        writer.write_eof()  # half-close: the echo still owes us the rest

    try:
        _, received = await asyncio.wait_for(asyncio.gather(send(), reader.read()), TIMEOUT)
    finally:
        await _close(writer)
    assert received == payload
    assert echo.accepted == 1


async def test_ipv6_literal_target(proxy: ConnectProxy, routes: RecordingRoutes) -> None:
    reader, writer = await _connect(proxy.port, "[::1]:443")
    try:
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), TIMEOUT) == b"hello"
    finally:
        await _close(writer)
    assert routes.asked == [("::1", 443)]


async def test_unrouted_target_is_forbidden_without_connecting(
    proxy: ConnectProxy, routes: RecordingRoutes, echo: EchoServer
) -> None:
    # The echo server's real address: reachable, but not a route, so never dialled.
    target = f"127.0.0.1:{echo.port}"
    head = f"CONNECT {target} HTTP/1.1\r\n\r\n".encode()
    assert await _refused(proxy.port, head) == b"HTTP/1.1 403 Forbidden"
    assert routes.asked == [("127.0.0.1", echo.port)]
    assert echo.accepted == 0


async def test_other_methods_are_not_allowed(proxy: ConnectProxy) -> None:
    head = b"GET http://localhost:8883/ HTTP/1.1\r\nHost: localhost\r\n\r\n"
    _, writer, response = await _request(proxy.port, head)
    await _close(writer)
    assert response.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nAllow: CONNECT\r\n" in response


@pytest.mark.parametrize(
    "head",
    [
        b"\x16\x03\x01\x02\x00garbage\r\n\r\n",
        b"CONNECT localhost HTTP/1.1\r\n\r\n",
        b"CONNECT localhost:8883 HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n",
        b"CONNECT localhost:8883 HTTP/1.1\r\nX-Pad: " + b"a" * 9000,
    ],
    ids=["garbage", "no-port", "oversized", "oversized-unterminated"],
)
async def test_bad_requests_get_400(proxy: ConnectProxy, echo: EchoServer, head: bytes) -> None:
    assert await _refused(proxy.port, head) == b"HTTP/1.1 400 Bad Request"
    assert echo.accepted == 0


async def test_client_that_never_finishes_its_request_is_dropped(echo: EchoServer) -> None:
    proxy = ConnectProxy(lambda host, port: ("127.0.0.1", echo.port), header_timeout=0.2)
    await proxy.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"CONNECT localhost:8883 HTTP/1.1\r\n")
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        await _close(writer)
        await proxy.close()
    assert echo.accepted == 0


async def test_upstream_refusing_gives_502() -> None:
    # Bound but not listening: connecting to it is refused, and no one else can take it.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        upstream = closed_port.getsockname()
        proxy = ConnectProxy(lambda host, port: upstream)
        await proxy.start()
        try:
            head = b"CONNECT localhost:8883 HTTP/1.1\r\n\r\n"
            assert await _refused(proxy.port, head) == b"HTTP/1.1 502 Bad Gateway"
        finally:
            await proxy.close()


async def test_close_ends_live_tunnels_and_leaves_nothing_running(
    proxy: ConnectProxy, echo: EchoServer
) -> None:
    gc.collect()  # garbage of earlier tests must not be blamed on this one
    tunnels = [await _connect(proxy.port, "localhost:8883") for _ in range(3)]
    for index, (reader, writer) in enumerate(tunnels):
        writer.write(b"%d" % index)
        assert await asyncio.wait_for(reader.readexactly(1), TIMEOUT) == b"%d" % index
    # A fourth client is mid-request when the proxy closes.
    _, idle = await asyncio.open_connection("127.0.0.1", proxy.port)

    await proxy.close()

    for reader, writer in tunnels:
        with contextlib.suppress(OSError):
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await _close(writer)
    await _close(idle)
    await echo.wait_idle()  # the upstream side of each tunnel was closed too
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", proxy.port)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    ours = (f":{proxy.port}", f", {proxy.port})", f", {echo.port})")
    leaked = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and any(p in str(w.message) for p in ours)
    ]
    assert not leaked


# --- real MQTT clients through the proxy --------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return ensure_certificates(tmp_path_factory.mktemp("hubdata"))


@dataclass
class MqttStub:
    """Just enough of a TLS MQTT broker: answers CONNECT with CONNACK 0, notes what it saw."""

    sni: list[str | None] = field(default_factory=list)
    client_ids: list[str] = field(default_factory=list)
    tls_versions: list[str] = field(default_factory=list)
    disconnects: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.tls_versions.append(writer.get_extra_info("ssl_object").version())
            kind, body = await _read_packet(reader)
            assert kind == 0x10, "expected CONNECT"
            id_length = int.from_bytes(body[10:12], "big")
            self.client_ids.append(body[12 : 12 + id_length].decode())
            writer.write(b"\x20\x02\x00\x00")
            await writer.drain()
            while True:
                kind, _ = await _read_packet(reader)
                self.disconnects += kind == 0xE0
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    kind = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return kind, await reader.readexactly(length)


@pytest.fixture
async def mqtt_hub(certs: CertPaths) -> AsyncIterator[tuple[MqttStub, ConnectProxy]]:
    """A TLS MQTT stub reachable only as localhost:8883 through a CONNECT proxy."""
    stub = MqttStub()
    ctx = server_context(certs)
    ctx.sni_callback = lambda sslobj, name, context: stub.sni.append(name)
    server = await asyncio.start_server(stub.handle, "127.0.0.1", 0, ssl=ctx)
    rest = ("127.0.0.1", 9)  # never used by these tests
    proxy = ConnectProxy(hub_routes(["localhost"], server.sockets[0].getsockname(), rest))
    await proxy.start()
    yield stub, proxy
    await proxy.close()
    server.close()
    await server.wait_closed()


def _paho_round_trip(ca_pem: str, configure: Callable[[mqtt.Client], None]) -> int:
    """Connect paho 1.6.1 the way the device SDK does (A.1) and return the CONNACK code."""
    client = mqtt.Client(client_id="d1/m1", clean_session=False, protocol=mqtt.MQTTv311)
    configure(client)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=ca_pem)
    client.tls_set_context(ctx)
    connected = threading.Event()
    codes: list[int] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object, rc: int) -> None:
        codes.append(rc)
        connected.set()

    client.on_connect = on_connect
    client.connect("localhost", 8883, keepalive=60)
    client.loop_start()
    try:
        assert connected.wait(TIMEOUT), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


@pytest.mark.parametrize("via", ["proxy_set", "MQTT_PROXY"])
async def test_paho_reaches_hub_through_proxy_with_end_to_end_tls(
    mqtt_hub: tuple[MqttStub, ConnectProxy],
    certs: CertPaths,
    monkeypatch: pytest.MonkeyPatch,
    via: str,
) -> None:
    stub, proxy = mqtt_hub
    for name in ("no_proxy", "NO_PROXY", "mqtt_proxy", "MQTT_PROXY"):
        monkeypatch.delenv(name, raising=False)
    if via == "MQTT_PROXY":
        monkeypatch.setenv("MQTT_PROXY", f"http://127.0.0.1:{proxy.port}")

    def configure(client: mqtt.Client) -> None:
        if via == "proxy_set":
            client.proxy_set(proxy_type=socks.HTTP, proxy_addr="127.0.0.1", proxy_port=proxy.port)

    rc = await asyncio.to_thread(_paho_round_trip, certs.ca_cert.read_text(), configure)
    assert rc == 0
    assert stub.sni == ["localhost"]
    assert stub.client_ids == ["d1/m1"]
    assert stub.tls_versions == ["TLSv1.2"]


# The SDK itself builds its contexts with the deprecated PROTOCOL_TLSv1_2 (A.1).
@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLSv1_2 is deprecated:DeprecationWarning")
async def test_device_sdk_proxy_options_reach_hub(
    mqtt_hub: tuple[MqttStub, ConnectProxy], certs: CertPaths
) -> None:
    from azure.iot.device import ProxyOptions
    from azure.iot.device.aio import IoTHubModuleClient

    stub, proxy = mqtt_hub
    client = IoTHubModuleClient.create_from_connection_string(
        "HostName=localhost;DeviceId=d1;ModuleId=m1;SharedAccessKey=a2V5a2V5a2V5a2V5",
        server_verification_cert=certs.ca_cert.read_text(),
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", proxy.port),
        connection_retry=False,
    )
    try:
        await asyncio.wait_for(client.connect(), TIMEOUT)
        assert client.connected
    finally:
        await asyncio.wait_for(client.shutdown(), TIMEOUT)
    assert stub.sni == ["localhost"]
    assert stub.client_ids == ["d1/m1"]
    assert stub.tls_versions == ["TLSv1.2"]
