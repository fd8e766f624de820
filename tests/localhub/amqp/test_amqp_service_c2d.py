"""The service side over AMQP: ``IoTHubRegistryManager.send_c2d_message`` (uamqp, SASL
MSSBCBS, CBS with a service token) queues a C2D message that devices receive over AMQP
and over MQTT (reference D.1, F.3).

uamqp always dials port 5671 of the connection string's HostName, so the sender runs in a
private network namespace whose ``localhost:5671`` (and 443) lead to the hub's ports; it
trusts the hub's CA through ``SSL_CERT_FILE``, as uamqp's OpenSSL reads it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from azure.iot.device import ProxyOptions

from tests.hubfixtures import strip_port
from tests.localhub.amqp.raw_client import RECEIVER, SENDER, RawClient, RawLink, data_message
from tests.localhub.amqp.support import amqp_hub, node_over_amqp, raw_client
from tests.localhub.mqtt_support import Inbox, ensure_identity, sdk_client, set_handler, until
from tests.node.harness import NodeService
from tests.node.netns import HTTPS_PORT, PrivateLoopback, private_loopback_or_skip
from twin_explorer.connection.sas import generate_service_token
from twin_explorer.localhub.core.c2d import MAX_QUEUE_DEPTH
from twin_explorer.localhub.protocols.amqp import Accepted, Rejected, Released, Symbol, Transfer
from twin_explorer.localhub.runtime.server import HubServer

__all__ = ["amqp_hub"]  # the fixture
AMQPS_PORT = 5671
SEND = """
import sys
from azure.iot.hub import IoTHubRegistryManager
manager = IoTHubRegistryManager.from_connection_string(sys.argv[1])
manager.send_c2d_message(sys.argv[2], sys.argv[3], properties={"k": "v", "messageId": "svc-1"})
print("sent")
"""


@pytest_asyncio.fixture
async def network(amqp_hub: HubServer) -> AsyncIterator[PrivateLoopback]:
    network = private_loopback_or_skip(HTTPS_PORT, AMQPS_PORT)
    try:
        await network.forward_to("127.0.0.1", amqp_hub.rest_port, listen_port=HTTPS_PORT)
        assert amqp_hub.amqp_port is not None
        await network.forward_to("127.0.0.1", amqp_hub.amqp_port, listen_port=AMQPS_PORT)
        yield network
    finally:
        await network.close()


async def _send_c2d(hub: HubServer, network: PrivateLoopback, device_id: str, body: str) -> str:
    """Run the unmodified service SDK's send_c2d_message in the namespace; its output."""
    env = {**os.environ, "SSL_CERT_FILE": str(hub.certificates.ca_cert)}
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env.pop(key, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SEND,
        strip_port(hub.service_connection_string("service"), hub.hostname),
        device_id,
        body,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=network.enter,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    return out.decode() + err.decode()[-2000:]


async def test_send_c2d_message_reaches_a_node_amqp_device(
    amqp_hub: HubServer, network: PrivateLoopback
) -> None:
    async with await node_over_amqp(amqp_hub, "svcdev") as node:
        await node.call("open")
        await node.call("on_c2d", settle="complete")
        output = await _send_c2d(amqp_hub, network, "svcdev", '{"cmd":"on"}')
        assert output.startswith("sent"), output
        event = await node.next_event()
        assert event["event"] == "c2d", event
        assert (event["body"], event["messageId"]) == ('{"cmd":"on"}', "svc-1")
        assert event["properties"] == {"k": "v"}


async def test_send_c2d_message_reaches_a_python_mqtt_device(
    amqp_hub: HubServer, network: PrivateLoopback
) -> None:
    connection_string = ensure_identity(amqp_hub.core, "pydev")
    output = await _send_c2d(amqp_hub, network, "pydev", "hello")  # queued while offline
    assert output.startswith("sent"), output
    assert amqp_hub.core.get_device("pydev")["cloudToDeviceMessageCount"] == 1
    inbox = Inbox()
    proxy = ProxyOptions("HTTP", "127.0.0.1", amqp_hub.proxy_port)
    ca = amqp_hub.certificates.ca_cert.read_text()
    async with sdk_client(connection_string, ca, proxy) as device:
        await device.connect()
        await set_handler(device, "on_message_received", inbox)
        message = await inbox.get()
    assert (message.data, message.message_id, message.custom_properties) == (
        b"hello",
        "svc-1",
        {"k": "v"},
    )


async def test_c2d_for_an_unknown_device_or_a_full_queue_is_rejected(amqp_hub: HubServer) -> None:
    ensure_identity(amqp_hub.core, "full")
    client = await raw_client(amqp_hub)
    try:
        key = amqp_hub.core.policy_keys("service")[0]
        await client.put_token(generate_service_token("localhost", "service", key))
        link = await client.attach("/messages/devicebound", SENDER)
        outcome = await client.send(
            link, data_message(b"x", to="/devices/nobody/messages/devicebound")
        )
        assert isinstance(outcome, Rejected) and outcome.error.condition == Symbol("amqp:not-found")
        for _ in range(MAX_QUEUE_DEPTH):
            message = data_message(b"x", to="/devices/full/messages/devicebound")
            assert isinstance(await client.send(link, message), Accepted)
        outcome = await client.send(
            link, data_message(b"x", to="/devices/full/messages/devicebound")
        )
        assert isinstance(outcome, Rejected)
        assert outcome.error.condition == Symbol("amqp:resource-limit-exceeded")
        assert amqp_hub.core.c2d.depth("full") == MAX_QUEUE_DEPTH
    finally:
        await client.close()


async def _feedback(service: NodeService) -> list[dict]:
    event = await service.next_event()
    assert event["event"] == "feedback", event
    return event["records"]


async def test_the_node_service_client_sends_c2d_and_hears_its_feedback(
    amqp_hub: HubServer, network: PrivateLoopback
) -> None:
    """azure-iothub's Client over AMQP: send with ack "full" to a Node AMQP device that
    completes one message and rejects the next; the feedback receiver hears both."""
    service_string = strip_port(amqp_hub.service_connection_string("service"), amqp_hub.hostname)
    async with (
        await node_over_amqp(amqp_hub, "fbdev") as device,
        await NodeService.start(service_string, amqp_hub.certificates.ca_cert, network) as service,
    ):
        await device.call("open")
        await device.call("on_c2d", settle="complete")
        assert (await service.answer("c2d_feedback"))["event"] == "feedback_ready"
        sent = await service.answer(
            "c2d_send", device="fbdev", body="on", messageId="fb-1", ack="full"
        )
        assert sent["event"] == "c2d_sent", sent
        assert (await device.next_event())["messageId"] == "fb-1"
        [record] = await _feedback(service)
        assert (record["originalMessageId"], record["statusCode"], record["deviceId"]) == (
            "fb-1",
            "Success",
            "fbdev",
        )
        await device.call("on_c2d", settle="reject")
        await service.answer(
            "c2d_send", device="fbdev", body="off", messageId="fb-2", ack="negative"
        )
        assert (await device.next_event())["messageId"] == "fb-2"
        [record] = await _feedback(service)
        assert (record["originalMessageId"], record["statusCode"]) == ("fb-2", "Rejected")
    assert len(amqp_hub.core.feedback) == 0


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def feedback_record(hub: HubServer, device_id: str, message_id: str) -> None:
    """A completed C2D message that asked for full feedback: one record queued."""
    hub.core.send_c2d(device_id, b"x", {"iothub-ack": "full"}, message_id=message_id)
    taken = hub.core.c2d.receive(device_id)
    assert taken is not None and taken.lock_token is not None
    hub.core.complete_c2d(device_id, taken.lock_token)


async def feedback_receiver(hub: HubServer) -> tuple[RawClient, RawLink]:
    client = await raw_client(hub)
    key = hub.core.policy_keys("service")[0]
    await client.put_token(generate_service_token("localhost", "service", key))
    return client, await client.attach("/messages/serviceBound/feedback", RECEIVER)


async def next_batch(link: RawLink) -> tuple[Transfer, list[str]]:
    """The next feedback delivery (unsettled: the receiver completes it) and its ids."""
    async with asyncio.timeout(10):
        transfer, message = await link.messages.get()
    assert not transfer.settled
    records = json.loads(message.data)
    return transfer, [record["originalMessageId"] for record in records]


async def test_feedback_comes_again_until_a_receiver_completes_it(amqp_hub: HubServer) -> None:
    """IoT Hub's feedback is peek-locked: a batch a receiver does not complete (its
    connection ends first, or it releases it) is delivered again; completed, it is gone."""
    ensure_identity(amqp_hub.core, "fbd")
    feedback_record(amqp_hub, "fbd", "once")
    first, link = await feedback_receiver(amqp_hub)
    try:
        _, ids = await next_batch(link)
        assert ids == ["once"] and len(amqp_hub.core.feedback) == 0  # on its way
    finally:
        await first.close()  # gone without completing it
    await until(lambda: len(amqp_hub.core.feedback) == 1)

    second, link = await feedback_receiver(amqp_hub)
    try:
        transfer, ids = await next_batch(link)
        assert ids == ["once"]
        second.settle(transfer, Released())  # given back: it comes again
        transfer, ids = await next_batch(link)
        assert ids == ["once"]
        second.settle(transfer, Accepted())  # completed
        feedback_record(amqp_hub, "fbd", "twice")
        transfer, ids = await next_batch(link)
        assert ids == ["twice"]
        second.settle(transfer, Accepted())
    finally:
        await second.close()

    third, link = await feedback_receiver(amqp_hub)
    try:
        feedback_record(amqp_hub, "fbd", "thrice")
        _, ids = await next_batch(link)
        assert ids == ["thrice"]  # nothing completed came back
    finally:
        await third.close()
