"""The sans-I/O core against the real client the device SDK uses (paho-mqtt 1.6.1).

A minimal asyncio TCP shell on 127.0.0.1 (OS-chosen port) that only moves bytes, answers twin
GETs and reports events; every protocol decision is ServerConnection's.
"""

from __future__ import annotations

import asyncio
import contextlib

import paho.mqtt.client as mqtt

from twin_explorer.localhub.protocols.mqtt.connection import ServerConnection
from twin_explorer.localhub.protocols.mqtt.events import (
    NEED_DATA,
    PAUSED,
    ConnectRequested,
    Disconnected,
    DisconnectReason,
    PubAcked,
    Published,
    Subscribed,
)
from twin_explorer.localhub.protocols.mqtt.iothub_topics import (
    TWIN_RESPONSE_FILTER,
    TwinGet,
    parse_device_publish,
    twin_get_topic,
    twin_response_topic,
)
from twin_explorer.localhub.protocols.mqtt.session import SessionStore

TIMEOUT = 10.0
TWIN = b'{"desired":{"$version":1},"reported":{"$version":1}}'


class TinyShell:
    def __init__(self) -> None:
        self.store = SessionStore()
        self.events: asyncio.Queue = asyncio.Queue()
        self.connections: list[tuple[ServerConnection, asyncio.StreamWriter]] = []
        self.handlers: set[asyncio.Task] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handlers.add(asyncio.current_task())
        loop = asyncio.get_running_loop()
        conn = ServerConnection(loop.time())
        self.connections.append((conn, writer))
        try:
            while True:
                conn.receive_data(await reader.read(65536), loop.time())
                while (event := conn.next_event()) is not NEED_DATA and event is not PAUSED:
                    self.events.put_nowait(event)
                    writer.write(self.react(conn, event))
                    if isinstance(event, Disconnected):
                        self.store.release(conn.session)
                        return
                writer.write(conn.data_to_send())
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def react(self, conn: ServerConnection, event: object) -> bytes:
        if isinstance(event, ConnectRequested):
            return conn.accept(*self.store.attach(event.client_id, event.clean_session))
        if isinstance(event, Published):
            request = parse_device_publish(event.topic, event.payload)
            out = conn.ack(event.packet_id)
            if isinstance(request, TwinGet):
                out += conn.publish(twin_response_topic(200, request.rid), TWIN, qos=1)
            return out
        return conn.data_to_send()


async def next_of(queue: asyncio.Queue, kind: type | str):
    """The next item, which must be an event of type `kind` or a paho report named `kind`."""
    item = await asyncio.wait_for(queue.get(), TIMEOUT)
    matches = item[0] == kind if isinstance(kind, str) else isinstance(item, kind)
    assert matches, f"expected {kind}, got {item!r}"
    return item


async def test_paho_client_against_server_connection():
    loop = asyncio.get_running_loop()
    shell = TinyShell()
    server = await asyncio.start_server(shell.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen: asyncio.Queue = asyncio.Queue()  # what the paho client observed, in order

    def report(*item):
        loop.call_soon_threadsafe(seen.put_nowait, item)

    client = mqtt.Client(client_id="d1/m1", clean_session=False, protocol=mqtt.MQTTv311)
    client.username_pw_set("localhost/d1/m1/?api-version=2019-10-01", "SharedAccessSignature x")
    client.on_connect = lambda c, u, flags, rc: report("connect", flags["session present"], rc)
    client.on_subscribe = lambda c, u, mid, granted: report("subscribe", mid, granted)
    client.on_publish = lambda c, u, mid: report("publish", mid)
    client.on_message = lambda c, u, msg: report("message", msg.topic, msg.payload, msg.qos)
    client.on_disconnect = lambda c, u, rc: report("disconnect", rc)
    try:
        await asyncio.to_thread(client.connect, "127.0.0.1", port, 30)
        client.loop_start()
        request = await next_of(shell.events, ConnectRequested)
        assert (request.client_id, request.clean_session, request.keepalive) == ("d1/m1", False, 30)
        assert request.password == b"SharedAccessSignature x"
        assert await next_of(seen, "connect") == ("connect", 0, 0)

        _, sub_mid = client.subscribe(TWIN_RESPONSE_FILTER, qos=1)
        assert (await next_of(shell.events, Subscribed)).filters == (TWIN_RESPONSE_FILTER,)
        assert await next_of(seen, "subscribe") == ("subscribe", sub_mid, (1,))

        info = client.publish(twin_get_topic("rid-1"), b" ", qos=1)
        published = await next_of(shell.events, Published)
        assert (published.topic, published.payload, published.qos) == (
            "$iothub/twin/GET/?$rid=rid-1",
            b" ",
            1,
        )
        assert await next_of(seen, "publish") == ("publish", info.mid)
        response = ("message", "$iothub/twin/res/200/?$rid=rid-1", TWIN, 1)
        assert await next_of(seen, "message") == response
        assert (await next_of(shell.events, PubAcked)).topic == response[1]

        client.disconnect()
        assert (await next_of(shell.events, Disconnected)).reason is (
            DisconnectReason.CLIENT_DISCONNECT
        )
        assert await next_of(seen, "disconnect") == ("disconnect", 0)
        client.loop_stop()

        # Reconnect as the SDK does after a SAS renewal: no SUBSCRIBE, yet the subscription holds.
        await asyncio.to_thread(client.reconnect)
        client.loop_start()
        await next_of(shell.events, ConnectRequested)
        assert await next_of(seen, "connect") == ("connect", 1, 0)
        conn, writer = shell.connections[-1]
        assert conn.session.matches("$iothub/twin/res/200/?$rid=rid-2")
        writer.write(conn.publish(twin_response_topic(204, "rid-2", version=2), b"", qos=1))
        assert await next_of(seen, "message") == (
            "message",
            "$iothub/twin/res/204/?$rid=rid-2&$version=2",
            b"",
            1,
        )
        await next_of(shell.events, PubAcked)
        client.disconnect()
        await next_of(shell.events, Disconnected)
        await next_of(seen, "disconnect")
    finally:
        client.loop_stop()
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*shell.handlers), TIMEOUT)
