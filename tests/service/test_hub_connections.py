"""``HubService`` keeps its HTTPS connections alive between calls, and closes them.

A relay (``tests.gate.Gate``) sits between the service and an in-process hub, so the tests
see every TCP connection the SDK opens (each one is also a TLS handshake).
"""

from __future__ import annotations

import pytest

from tests.gate import Gate
from tests.service.localhub import QuickService
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service import errors

DEVICE, MODULE = "keepalive-device", "keepalive-module"


@pytest.fixture
async def relayed(hub_server: HubServer):
    """A relay in front of the hub's REST port, and a HubService that dials the relay."""
    relay = Gate(("127.0.0.1", hub_server.rest_port))
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
    relay.cut()
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
