"""``HubService`` keeps its HTTPS connections alive between calls, and closes them.

A counting TCP relay sits between the service and an in-process hub, so the tests see
every TCP connection the SDK opens (each one is also a TLS handshake).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.service.localhub import QuickService
from twin_explorer.localhub.server import HubServer
from twin_explorer.service import errors

DEVICE, MODULE = "keepalive-device", "keepalive-module"


class CountingRelay:
    """Forwards loopback TCP connections to ``target_port`` and counts them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._open.add(writer)
        self._idle.clear()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer)),
            asyncio.ensure_future(_pump(up_reader, writer)),
        ]
        try:
            # Either side's end ends both: TLS peers do not half-close.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for w in (writer, up_writer):
                w.close()
            self._open.discard(writer)
            if not self._open:
                self._idle.set()

    def drop_all(self) -> None:
        """Close every relayed connection, as a hub restart or an idle timeout does."""
        for writer in list(self._open):
            writer.transport.abort()

    async def wait_idle(self) -> None:
        async with asyncio.timeout(10.0):
            await self._idle.wait()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def close(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


@pytest.fixture
async def relayed(hub_server: HubServer):
    """A relay in front of the hub's REST port, and a HubService that dials the relay."""
    relay = CountingRelay(hub_server.rest_port)
    port = await relay.start()
    hub_server.core.put_device(DEVICE, {"status": "enabled"}, None)
    hub_server.core.put_module(DEVICE, MODULE, {}, None)
    # HostName=localhost:<relay port>: the hub accepts a token's sr with any port (D.3).
    connection_string = hub_server.core.service_connection_string(
        "iothubowner", f"{hub_server.hostname}:{port}"
    )
    # One worker: each worker thread keeps a connection of its own, and which worker
    # takes a call is the pool's choice.
    service = QuickService(
        connection_string,
        ca_cert=str(hub_server.certificates.ca_cert),
        use_env_proxies=False,
        max_workers=1,
    )
    try:
        yield relay, service
    finally:
        await service.aclose()
        await relay.close()


async def test_calls_share_one_connection(relayed) -> None:
    relay, service = relayed
    for n in range(10):
        twin = await service.patch_twin(DEVICE, MODULE, {"properties": {"desired": {"n": n}}}, None)
        assert twin.desired["n"] == n
        assert (await service.get_twin(DEVICE, MODULE)).desired["n"] == n
    page = await service.query("SELECT * FROM devices")
    assert [item["deviceId"] for item in page.items] == [DEVICE]
    assert relay.accepted == 1


async def test_aclose_closes_the_connection(relayed) -> None:
    relay, service = relayed
    await service.get_twin(DEVICE, MODULE)
    assert relay.open_connections == 1
    await service.aclose()
    await relay.wait_idle()
    assert relay.open_connections == 0


async def test_a_dropped_connection_is_replaced(relayed) -> None:
    relay, service = relayed
    await service.get_twin(DEVICE, MODULE)
    relay.drop_all()
    await relay.wait_idle()
    twin = await service.patch_twin(DEVICE, MODULE, {"properties": {"desired": {"n": 1}}}, None)
    assert twin.desired["n"] == 1
    assert relay.accepted == 2


async def test_errors_still_come_in_plain_words(relayed) -> None:
    """The raw twin calls raise what the SDK's own operations raised: same translations."""
    relay, service = relayed
    with pytest.raises(errors.NotFound) as missing:
        await service.get_twin(DEVICE, "no-such-module")
    assert "no-such-module" in str(missing.value)
    twin = await service.get_twin(DEVICE, MODULE)
    await service.patch_twin(DEVICE, MODULE, {"tags": {"a": 1}}, twin.etag)
    with pytest.raises(errors.PreconditionFailed):
        await service.patch_twin(DEVICE, MODULE, {"tags": {"a": 2}}, twin.etag)
    assert relay.accepted == 1  # an error answer does not cost the connection
