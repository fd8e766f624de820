"""The AMQP listener in the hub: through the CONNECT proxy as ``<hostname>:5671``, over any
stream already past TLS (``serve_stream``, what WebSockets carry), and in the core's
presence (one connection per identity; a deleted identity's connection closes)."""

from __future__ import annotations

import asyncio

from tests.localhub.amqp.raw_client import SENDER, RawClient
from tests.localhub.amqp.support import amqp_hub, identity_token, raw_client
from twin_explorer.localhub.protocols.amqp import Symbol
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.runtime.tls import client_context

__all__ = ["amqp_hub"]  # the fixture


async def test_the_proxy_routes_5671_to_the_amqp_listener(amqp_hub: HubServer) -> None:
    assert amqp_hub.public_info()["amqp_port"] == amqp_hub.amqp_port
    client = await RawClient.connect(
        5671, client_context(amqp_hub.certificates), proxy=amqp_hub.proxy_port
    )
    try:
        assert await client.put_token(identity_token(amqp_hub, "viaproxy")) == (200, "OK")
        assert amqp_hub.core.presence.online() == ["viaproxy"]
    finally:
        await client.close()


async def test_serve_stream_carries_amqp_over_a_stream_past_tls(amqp_hub: HubServer) -> None:
    amqp = amqp_hub.amqp
    assert amqp is not None

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await amqp.serve_stream(reader, writer, via="test stream")

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await RawClient.connect(port, None)
    try:
        assert await client.put_token(identity_token(amqp_hub, "streamed")) == (200, "OK")
        await client.attach("/devices/streamed/twin", SENDER)
        assert amqp.connected_clients() == ["streamed"]
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_a_newer_connection_takes_the_identity_over_and_deletion_closes_it(
    amqp_hub: HubServer,
) -> None:
    first, second = await raw_client(amqp_hub), await raw_client(amqp_hub)
    try:
        assert (await first.put_token(identity_token(amqp_hub, "twice")))[0] == 200
        assert (await second.put_token(identity_token(amqp_hub, "twice")))[0] == 200
        async with asyncio.timeout(10):
            await first.closed
        assert not second.closed.done()
        amqp_hub.core.delete_device("twice", None)
        async with asyncio.timeout(10):
            await second.closed
        assert amqp_hub.core.presence.online() == []
    finally:
        await first.close()
        await second.close()


def test_the_hub_command_takes_an_amqp_port() -> None:
    from twin_explorer.cli import build_parser

    assert build_parser().parse_args(["hub"]).amqp_port == 5671
    assert build_parser().parse_args(["hub", "--amqp-port", "0"]).amqp_port == 0
    assert build_parser().parse_args(["hub", "--amqp-port", "off"]).amqp_port is None


async def test_amqp_off(hub_data_dir) -> None:
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=None, amqp_port=None, proxy_port=None
    ) as hub:
        assert hub.amqp is None and hub.public_info()["amqp_port"] is None
        assert [listener.name for listener in hub.listeners] == ["REST"]


async def test_the_hub_keeps_an_idle_client_alive_with_heartbeats(amqp_hub: HubServer) -> None:
    """A client with an idle timeout (the .NET SDK sets one) hears from the hub at least
    that often, though nothing else happens: empty frames, on the hub's own timer."""
    client = await raw_client(amqp_hub, idle_timeout_ms=400)
    try:
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(10):
            while client.heartbeats < 3:
                client.heartbeat.clear()
                await client.heartbeat.wait()
        assert asyncio.get_running_loop().time() - started < 2.0
        assert not client.closed.done()
    finally:
        await client.close()


async def test_an_identity_dropped_from_a_shared_connection_takes_only_its_links(
    amqp_hub: HubServer,
) -> None:
    """Several devices on one connection (as .NET multiplexes them): deleting one detaches
    its links; the connection and the other device stay."""
    client = await raw_client(amqp_hub)
    try:
        for device_id in ("shared1", "shared2"):
            assert (await client.put_token(identity_token(amqp_hub, device_id)))[0] == 200
        gone = await client.attach("/devices/shared1/twin", SENDER)
        kept = await client.attach("/devices/shared2/twin", SENDER)
        assert amqp_hub.core.presence.online() == ["shared1", "shared2"]
        amqp_hub.core.delete_device("shared1", None)
        async with asyncio.timeout(10):
            detach = await gone.detached
        assert detach.error.condition == Symbol("amqp:link:detach-forced")
        assert not kept.detached.done() and not client.closed.done()
        assert amqp_hub.core.presence.online() == ["shared2"]
    finally:
        await client.close()
