"""Cloud-to-device messages from the app's service side, against the real local hub: the
app's :class:`Outbox` sends over AMQP (its own uamqp client on its own loop), a real
``azure-iot-device`` client receives over MQTT (or the device HTTPS API settles), and the
feedback the hub sends comes back to the entry it belongs to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from azure.iot.device import ProxyOptions

from tests.hubfixtures import RestClient
from tests.localhub.amqp.support import amqp_hub
from tests.localhub.amqp.test_amqp_service_c2d import feedback_receiver, feedback_record, next_batch
from tests.localhub.mqtt_support import Inbox, ensure_identity, sdk_client, set_handler
from tests.localhub.test_entra import client_credential, roles
from twin_explorer.connection.sas import device_resource_uri, generate_device_token
from twin_explorer.connection.strings import parse
from twin_explorer.localhub.core.c2d import MAX_DELIVERY_COUNT, MAX_QUEUE_DEPTH
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.c2d import outbox as outbox_module
from twin_explorer.service.c2d.client import C2DClient, C2DError
from twin_explorer.service.c2d.endpoint import C2DEndpoint
from twin_explorer.service.c2d.message import MAX_MESSAGE_BYTES, Ack, OutgoingMessage
from twin_explorer.service.c2d.outbox import Outbox, Sent, State
from twin_explorer.service.io_thread import IoThread

__all__ = ["amqp_hub"]  # the fixture
WAIT = 20.0


def endpoint_of(hub: HubServer, policy: str = "iothubowner", **changes) -> C2DEndpoint:
    assert hub.amqp_port is not None
    return C2DEndpoint.from_connection_string(
        hub.service_connection_string(policy),
        port=changes.pop("port", hub.amqp_port),
        ca_cert=str(hub.certificates.ca_cert),
    )


@pytest_asyncio.fixture
async def outbox(amqp_hub: HubServer) -> AsyncIterator[Outbox]:
    box = Outbox(lambda: endpoint_of(amqp_hub))
    try:
        yield box
    finally:
        await box.aclose()


async def settled(box: Outbox, message_id: str, done: Callable[[Sent], bool]) -> Sent:
    """The entry of ``message_id`` once ``done`` says so (waits on the outbox's news)."""
    arrived = asyncio.Event()
    unsubscribe = box.changed.subscribe(lambda entry: arrived.set())
    try:
        async with asyncio.timeout(WAIT):
            while True:
                for entry in box.entries:
                    if entry.message_id == message_id and done(entry):
                        return entry
                arrived.clear()
                await arrived.wait()
    finally:
        unsubscribe()


def secrets_of(hub: HubServer) -> list[str]:
    keys = [*hub.core.policy_keys("iothubowner"), *hub.core.policy_keys("registryRead")]
    return [k for k in keys if k]


async def test_an_mqtt_device_receives_every_property_and_full_feedback_says_completed(
    amqp_hub: HubServer, outbox: Outbox
) -> None:
    connection_string = ensure_identity(amqp_hub.core, "thermostat")
    inbox = Inbox()
    proxy = ProxyOptions("HTTP", "127.0.0.1", amqp_hub.proxy_port)
    ca = amqp_hub.certificates.ca_cert.read_text()
    async with sdk_client(connection_string, ca, proxy) as device:
        await device.connect()
        await set_handler(device, "on_message_received", inbox)
        message = OutgoingMessage(
            "thermostat",
            body='{"setpoint": 21.5}',
            content_type="application/json",
            content_encoding="utf-8",
            properties=(("unit", "celsius"), ("room", "kitchen")),
            message_id="set-1",
            ttl_seconds=600,
            ack=Ack.FULL,
            correlation_id="job-7",
        )
        entry = await outbox.send(message)
        assert entry.state in (State.WAITING, State.DELIVERED), entry
        got = await inbox.get()
    assert json.loads(got.data) == {"setpoint": 21.5}
    assert (got.message_id, got.correlation_id) == ("set-1", "job-7")
    assert (got.content_type, got.content_encoding) == ("application/json", "utf-8")
    assert got.custom_properties["unit"] == "celsius"
    assert got.custom_properties["room"] == "kitchen"
    assert got.expiry_time_utc  # the absolute expiry the TTL made
    done = await settled(outbox, "set-1", lambda e: e.finished)
    assert done.state is State.DELIVERED and done.feedback == "Success"
    assert done.text.startswith("The device completed the message at ")
    await outbox.aclose()
    # The outbox completed the feedback: a receiver after it gets only what came since.
    client, link = await feedback_receiver(amqp_hub)
    try:
        feedback_record(amqp_hub, "thermostat", "later")
        _, ids = await next_batch(link)
        assert ids == ["later"]
    finally:
        await client.close()


class DeviceHttps:
    """A device on IoT Hub's device HTTPS API: it polls for C2D messages and settles them
    (the Python device SDK cannot reject or abandon; this API can)."""

    def __init__(self, hub: HubServer, device_id: str) -> None:
        key = parse(ensure_identity(hub.core, device_id)).shared_access_key
        assert key is not None
        self.token = generate_device_token(device_resource_uri(hub.hostname, device_id), key)
        self.bound = f"/devices/{device_id}/messages/deviceBound"
        self.rest = RestClient.for_server(hub)

    async def take(self) -> tuple[bytes, str]:
        status, headers, body = await self.rest.request("GET", self.bound, auth=self.token)
        assert status == 200, status
        return body, headers["ETag"].strip('"')

    async def settle(self, lock: str, how: str) -> None:
        method, path = {
            "reject": ("DELETE", f"{self.bound}/{lock}?reject"),
            "abandon": ("POST", f"{self.bound}/{lock}/abandon"),
        }[how]
        status, _, _ = await self.rest.request(method, path, auth=self.token)
        assert status == 204, status


async def test_a_message_rejected_over_https_gives_rejected_feedback(
    amqp_hub: HubServer, outbox: Outbox
) -> None:
    device = DeviceHttps(amqp_hub, "valve")
    sent = await outbox.send(
        OutgoingMessage("valve", body="close", message_id="v-1", ack=Ack.NEGATIVE)
    )
    assert sent.state is State.WAITING, sent
    assert sent.text == "Sent (message id v-1). Waiting for feedback…"
    try:
        body, lock = await device.take()
        assert body == b"close"
        await device.settle(lock, "reject")
    finally:
        await device.rest.close()
    done = await settled(outbox, "v-1", lambda e: e.finished)
    assert (done.state, done.feedback) == (State.UNDELIVERED, "Rejected")
    assert done.text.startswith("The device rejected it at ")


async def test_a_message_given_back_too_often_gives_delivery_count_exceeded(
    amqp_hub: HubServer, outbox: Outbox
) -> None:
    device = DeviceHttps(amqp_hub, "fickle")
    await outbox.send(OutgoingMessage("fickle", body="x", message_id="f-1", ack=Ack.FULL))
    try:
        for _ in range(MAX_DELIVERY_COUNT):
            _, lock = await device.take()
            await device.settle(lock, "abandon")
    finally:
        await device.rest.close()
    done = await settled(outbox, "f-1", lambda e: e.finished)
    assert (done.state, done.feedback) == (State.UNDELIVERED, "DeliveryCountExceeded")
    assert done.text.startswith("Delivery count exceeded: the device gave it back too often at ")


async def test_a_message_nobody_takes_expires_with_feedback(
    amqp_hub: HubServer, outbox: Outbox
) -> None:
    ensure_identity(amqp_hub.core, "asleep")  # never connects
    await outbox.send(
        OutgoingMessage("asleep", body="wake", message_id="w-1", ttl_seconds=1, ack=Ack.FULL)
    )
    done = await settled(outbox, "w-1", lambda e: e.finished)
    assert (done.state, done.feedback) == (State.UNDELIVERED, "Expired")
    assert done.text.startswith("It expired before the device took it at ")


async def test_no_feedback_asked_no_feedback_waited_for(
    amqp_hub: HubServer, outbox: Outbox
) -> None:
    ensure_identity(amqp_hub.core, "quiet")
    entry = await outbox.send(OutgoingMessage("quiet", body="hi", message_id="q-1"))
    assert (entry.state, entry.text) == (State.SENT, "Sent (message id q-1).")
    assert amqp_hub.core.c2d.depth("quiet") == 1


async def test_refusals_in_plain_words_without_a_key(amqp_hub: HubServer, outbox: Outbox) -> None:
    ensure_identity(amqp_hub.core, "full")
    for _ in range(MAX_QUEUE_DEPTH):
        amqp_hub.core.send_c2d("full", b"x")
    unknown = await outbox.send(OutgoingMessage("nobody", body="x"))
    assert unknown.state is State.FAILED
    assert unknown.text == "The hub has no device 'nobody': it may have been deleted."
    full = await outbox.send(OutgoingMessage("full", body="x", ack=Ack.FULL))
    assert full.state is State.FAILED
    assert full.text.startswith("The queue of device 'full' is full: IoT Hub keeps at most 50")
    ensure_identity(amqp_hub.core, "ok")
    after = await outbox.send(OutgoingMessage("ok", body="x"))  # the link still works
    assert after.state is State.SENT, after

    read_only = Outbox(lambda: endpoint_of(amqp_hub, "registryRead"))
    closed = Outbox(lambda: endpoint_of(amqp_hub, port=1))  # nothing listens there
    try:
        refused = await read_only.send(OutgoingMessage("ok", body="x"))
        assert refused.state is State.FAILED
        assert "needs the Service connect permission" in refused.text
        unreachable = await closed.send(OutgoingMessage("ok", body="x"))
        assert unreachable.state is State.FAILED
        assert unreachable.text.startswith("The hub could not be reached over AMQP")
    finally:
        await read_only.aclose()
        await closed.aclose()
    for entry in [unknown, full, refused, unreachable]:
        for secret in secrets_of(amqp_hub):
            assert secret not in entry.text
        assert "SharedAccessSignature" not in entry.text


async def test_the_hub_refuses_a_message_over_64_kb(amqp_hub: HubServer) -> None:
    """The outbox never sends one (its check says why); the hub refuses it anyway."""
    ensure_identity(amqp_hub.core, "big")
    message = OutgoingMessage("big", body="x" * (MAX_MESSAGE_BYTES + 1))
    io = IoThread("c2d-test")
    client = C2DClient(endpoint_of(amqp_hub), lambda records: None)
    try:
        with pytest.raises(C2DError) as error:
            await io.run(client.send(message))
        assert str(error.value) == "The message is too large: IoT Hub takes at most 65,536 bytes."
        box = Outbox(lambda: endpoint_of(amqp_hub))
        entry = await box.send(message)
        assert entry.state is State.FAILED and "IoT Hub takes at most 65,536 bytes" in entry.text
        await box.aclose()
    finally:
        await io.run(client.close())
        await asyncio.to_thread(io.close)
    assert amqp_hub.core.c2d.depth("big") == 0


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_an_entra_sign_in_sends_with_a_bearer_token_its_role_allows(
    amqp_hub: HubServer,
) -> None:
    """A Microsoft Entra ID session: the outbox puts the credential's token on CBS; the
    principal's role decides, and a missing role is said in words."""
    ensure_identity(amqp_hub.core, "lamp")
    credential = client_credential(amqp_hub.ready_info())
    assert amqp_hub.amqp_port is not None
    endpoint = C2DEndpoint(
        "localhost", amqp_hub.amqp_port, str(amqp_hub.certificates.ca_cert), credential=credential
    )
    box = Outbox(lambda: endpoint)
    try:
        refused = await box.send(OutgoingMessage("lamp", body="on"))
        assert refused.state is State.FAILED
        assert refused.text == (
            "The hub refused your account: sending messages needs a role with the Service "
            "connect permission on this hub, such as IoT Hub Data Contributor."
        )
        await box.reset()
        assert roles(amqp_hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
        sent = await box.send(OutgoingMessage("lamp", body="on", message_id="e-1"))
        assert sent.state is State.SENT, sent
    finally:
        await box.aclose()
    assert amqp_hub.core.c2d.depth("lamp") == 1


async def test_feedback_is_awaited_for_a_bounded_number_of_messages(
    amqp_hub: HubServer, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "MAX_WAITING", 2)
    ensure_identity(amqp_hub.core, "offline")
    for number in range(3):
        await outbox.send(
            OutgoingMessage("offline", body="x", message_id=f"o-{number}", ack=Ack.FULL)
        )
    states = {entry.message_id: entry for entry in outbox.entries}
    assert states["o-0"].state is State.SENT
    assert states["o-0"].text.endswith("(no longer waited for)")
    assert [states[f"o-{n}"].state for n in (1, 2)] == [State.WAITING, State.WAITING]
