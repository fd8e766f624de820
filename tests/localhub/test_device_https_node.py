"""The unmodified Node.js device SDK over HTTPS (``azure-iot-device-http``) against an
in-process hub: telemetry, batches, C2D receive with complete / reject / abandon, and a
wrong key refused. The SDK reaches the hub's port 443 routes through the hub's CONNECT
proxy (see ``tests/node/http_device_client.js``)."""

from __future__ import annotations

import base64

from tests.localhub.mqtt_support import ensure_identity
from tests.node.harness import NodeHttpDevice
from twin_explorer.localhub.runtime.server import HubServer


async def _node_http_device(hub: HubServer, connection_string: str) -> NodeHttpDevice:
    assert hub.proxy_port is not None
    return await NodeHttpDevice.start_https(
        connection_string, hub.proxy_port, hub.certificates.ca_cert
    )


async def _next_message(node: NodeHttpDevice) -> dict:
    event = await node.next_event()
    assert event["event"] == "message", event
    return event


async def test_node_sends_events_and_batches_over_https(hub_server: HubServer) -> None:
    core = hub_server.core
    async with await _node_http_device(hub_server, ensure_identity(core, "nd")) as node:
        sent = await node.call("send", body="one", properties={"k": "v"}, messageId="m-1")
        assert sent == {"event": "sent"}
        batch = [{"body": "two", "properties": {"n": "2"}}, {"body": "three"}]
        assert await node.call("send_batch", messages=batch) == {"event": "sent"}
    messages = core.telemetry("nd")
    assert [(m["body"], m["properties"]) for m in messages] == [
        (b"one", {"k": "v"}),
        (b"two", {"n": "2"}),
        (b"three", {}),
    ]
    assert messages[0]["systemProperties"] == {"$.mid": "m-1"}
    device = core.get_device("nd")
    assert device["connectionState"] == "Disconnected"
    assert device["lastActivityTime"] != "0001-01-01T00:00:00Z"


async def test_node_receives_c2d_and_completes_rejects_and_abandons(
    hub_server: HubServer,
) -> None:
    core = hub_server.core
    connection_string = ensure_identity(core, "nd")
    # Where the AMQP service path lands, send_c2d_message takes over from send_c2d.
    for name in ("complete me", "reject me", "abandon me"):
        core.send_c2d("nd", name.encode(), {"what": name}, message_id=name.split()[0])
    async with await _node_http_device(hub_server, connection_string) as node:
        assert await node.call("listen") == {"event": "listening"}
        first, second, third = [await _next_message(node) for _ in range(3)]
        assert (first["data"], first["messageId"]) == ("complete me", "complete")
        # Node keeps the header name of an application property, prefix included.
        assert first["properties"] == {"iothub-app-what": "complete me"}
        assert await node.call("complete", lockToken=first["lockToken"]) == {"event": "completed"}
        assert await node.call("reject", lockToken=second["lockToken"]) == {"event": "rejected"}
        assert third["data"] == "abandon me"
        assert await node.call("abandon", lockToken=third["lockToken"]) == {"event": "abandoned"}
        again = await _next_message(node)  # the SDK polls again and gets it back
        assert (again["data"], again["messageId"]) == ("abandon me", "abandon")
        assert again["lockToken"] != third["lockToken"]
        assert await node.call("complete", lockToken=again["lockToken"]) == {"event": "completed"}
        # A settled lock is gone: IoT Hub's 412 reaches the SDK as an error.
        lost = await node.answer("complete", lockToken=first["lockToken"])
        assert (lost["event"], lost["status"]) == ("error", 412)
    assert core.c2d.depth("nd") == 0
    assert [m.body for m in core.c2d.dead_letters] == [b"reject me"]


async def test_node_with_a_wrong_key_is_refused(hub_server: HubServer) -> None:
    core = hub_server.core
    connection_string = ensure_identity(core, "nd")
    wrong = base64.b64encode(b"not the device key, 32 bytes ok!").decode()
    forged = ";".join(
        f"SharedAccessKey={wrong}" if part.startswith("SharedAccessKey=") else part
        for part in connection_string.split(";")
    )
    async with await _node_http_device(hub_server, forged) as node:
        refused = await node.answer("send", body="nope")
    assert (refused["event"], refused["name"], refused["status"]) == (
        "error",
        "UnauthorizedError",
        401,
    )
    assert core.telemetry_count("nd") == 0
