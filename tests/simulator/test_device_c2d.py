"""A simulated DEVICE against a real local hub: the twin and methods as for a module, and
cloud-to-device messages the service sends over AMQP, received by polling the device
HTTPS endpoint and completed, rejected or abandoned by hand, or completed on arrival
over MQTT. The hub's feedback tells the service what the device did."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.c2d_service import ServiceC2D
from tests.hubfixtures import HubProcess
from tests.simulator.conftest import new_module, transport_for
from tests.simulator.test_cli import Headless, _route
from twin_explorer.connection import certificates as certs
from twin_explorer.service.hub import HubService
from twin_explorer.service.models import X509Auth
from twin_explorer.simulator import (
    Behaviour,
    InboxMode,
    MessageState,
    MethodRule,
    MethodTable,
    Mode,
    Outcome,
    SimulatorError,
    Status,
)
from twin_explorer.simulator.device_https import LOCK_LOST, LockLost
from twin_explorer.simulator.x509_files import X509Identity

_ids = itertools.count(1)


@pytest_asyncio.fixture
async def c2d(hub: HubProcess) -> AsyncIterator[ServiceC2D]:
    sender = await ServiceC2D.open(
        hub.info["amqp_port"], hub.ca_cert, hub.service_connection_string
    )
    yield sender
    await sender.close()


async def _new_device(service: HubService) -> tuple[str, str]:
    device_id = f"sim-c2d-{next(_ids)}-{time.monotonic_ns()}"
    identity = await service.create_device(device_id)
    return device_id, service.connection_string(identity)


async def _received(
    sim, message_id: str, state: MessageState = MessageState.PENDING, after: int = 0
):
    await sim.recorder.wait(
        lambda e: (
            e.name in ("message_received", "message_settled")
            and e.data["message"]["messageId"] == message_id
            and e.data["message"]["state"] == state.value
        ),
        after=after,
    )
    inbox = sim.module.inbox
    return next(m for m in inbox.messages.values() if m.message_id == message_id)


async def _feedback_for(c2d: ServiceC2D, message_id: str) -> dict:
    while True:
        for record in await c2d.feedback():
            if record["originalMessageId"] == message_id:
                return record


async def test_a_device_twin_and_methods_work_as_a_modules(service, simulate):
    device, cs = await _new_device(service)
    table = MethodTable(rules={"reboot": MethodRule(Mode.FIXED, 201, {"rebooting": True})})
    sim = await simulate(cs, behaviour=Behaviour.ECHO, methods=table)
    assert sim.module.status is Status.CONNECTED
    assert not sim.module.is_module and sim.module.identity == device

    await service.patch_twin(device, None, {"properties": {"desired": {"rate": 3}}}, None)
    await sim.recorder.named("reported_sent")
    twin = await service.get_twin(device, None)
    assert twin.doc["properties"]["reported"]["rate"] == 3
    result = await service.invoke_method(device, None, "reboot", {})
    assert (result.status, result.payload) == (201, {"rebooting": True})


async def test_a_message_received_by_hand_is_completed(service, simulate, c2d):
    device, cs = await _new_device(service)
    sim = await simulate(cs)
    body = json.dumps({"command": "blink", "times": 3}).encode()
    await c2d.send(
        device,
        body,
        message_id="m-complete",
        properties={"priority": "high"},
        content_type="application/json",
        ack="full",
    )
    message = await _received(sim, "m-complete")
    assert message.via == "https" and message.pending
    assert message.body == body
    assert message.properties == {"priority": "high"}
    assert message.content_type == "application/json"
    assert message.delivery_count == 0
    assert message.lock_until is not None and message.lock_until > time.time()

    await sim.module.settle_message(message.number, Outcome.COMPLETE)
    assert message.state is MessageState.COMPLETED
    record = await _feedback_for(c2d, "m-complete")
    assert record["statusCode"] == "Success" and record["deviceId"] == device
    with pytest.raises(SimulatorError, match="Only a pending message"):
        await sim.module.settle_message(message.number, Outcome.REJECT)


async def test_a_rejected_message_is_dead_lettered(service, simulate, c2d):
    device, cs = await _new_device(service)
    sim = await simulate(cs)
    await c2d.send(device, b"\x00\x01binary", message_id="m-reject", ack="full")
    message = await _received(sim, "m-reject")
    await sim.module.settle_message(message.number, "reject")
    assert message.state is MessageState.REJECTED
    record = await _feedback_for(c2d, "m-reject")
    assert record["statusCode"] == "Rejected"


async def test_an_abandoned_message_comes_back_with_a_higher_delivery_count(service, simulate, c2d):
    device, cs = await _new_device(service)
    sim = await simulate(cs)
    await c2d.send(device, b"again", message_id="m-abandon")
    message = await _received(sim, "m-abandon")
    assert message.delivery_count == 0
    mark = len(sim.recorder.events)
    await sim.module.settle_message(message.number, Outcome.ABANDON)
    await sim.recorder.wait(
        lambda e: e.name == "message_received" and e.data["message"]["messageId"] == "m-abandon",
        after=mark,
    )
    assert message.pending and message.delivery_count == 1  # the same row, offered again
    assert [m.message_id for m in sim.module.inbox.messages.values()] == ["m-abandon"]
    await sim.module.settle_message(message.number, Outcome.COMPLETE)
    assert message.state is MessageState.COMPLETED


async def test_a_lock_that_ran_out_says_so_and_the_message_comes_back(service, simulate, c2d):
    device, cs = await _new_device(service)
    sim = await simulate(cs)
    inbox = sim.module.inbox
    inbox.lock_seconds = 1
    inbox.poll_seconds = 60  # no poll picks it up again before the settle below
    await c2d.send(device, b"slow", message_id="m-late")
    inbox.poll_now()
    message = await _received(sim, "m-late")
    hub_lock_ends = message.lock_until
    assert hub_lock_ends is not None
    # The hub's lock is a clock, and the condition is that it ran out: wait until then.
    await asyncio.sleep(max(0.0, hub_lock_ends + 0.5 - time.time()))
    with pytest.raises(LockLost) as raised:
        await sim.module.settle_message(message.number, Outcome.COMPLETE)
    assert raised.value.text == LOCK_LOST
    assert LOCK_LOST == "The message's lock ran out: it went back to the queue."
    assert message.state is MessageState.LOCK_EXPIRED
    mark = len(sim.recorder.events)
    inbox.poll_now()
    await _received(sim, "m-late", after=mark)
    assert message.pending and message.delivery_count == 1


async def test_on_arrival_mqtt_completes_and_the_mode_switches_back(service, simulate, c2d):
    device, cs = await _new_device(service)
    sim = await simulate(cs, inbox_mode=InboxMode.ON_ARRIVAL)
    await c2d.send(device, b"fast", message_id="m-mqtt", properties={"k": "v"}, ack="full")
    message = await _received(sim, "m-mqtt", MessageState.COMPLETED)
    assert message.via == "mqtt" and message.properties == {"k": "v"}
    assert (await _feedback_for(c2d, "m-mqtt"))["statusCode"] == "Success"
    with pytest.raises(SimulatorError, match="Only a pending message"):
        await sim.module.settle_message(message.number, Outcome.REJECT)

    # By hand again: MQTT no longer takes the messages, the HTTPS poll does.
    await sim.module.set_inbox_mode(InboxMode.BY_HAND)
    await c2d.send(device, b"slow", message_id="m-https")
    message = await _received(sim, "m-https")
    assert message.via == "https"
    await sim.module.settle_message(message.number, Outcome.COMPLETE)


async def test_an_x509_device_settles_over_https_with_its_certificate(
    hub: HubProcess, service, simulate, c2d
):
    device = f"sim-c2d-x509-{time.monotonic_ns()}"
    issued = certs.self_signed(certs.identity_cn(device, None))
    await service.create_device(device, X509Auth(issued.sha1))
    cs = f"HostName={hub.hostname};DeviceId={device};x509=true"
    sim = await simulate(cs, x509=X509Identity(issued.cert_pem, issued.key))
    await c2d.send(device, b"cert", message_id="m-x509", ack="full")
    message = await _received(sim, "m-x509")
    await sim.module.settle_message(message.number, Outcome.REJECT)
    assert (await _feedback_for(c2d, "m-x509"))["statusCode"] == "Rejected"


async def test_an_unreachable_https_endpoint_is_said_in_words(hub, service, simulate):
    _, cs = await _new_device(service)
    closed = transport_for(hub, https_port=1)
    sim = await simulate(cs, transport=closed)
    event = await sim.recorder.wait(lambda e: e.name == "inbox" and "reach" in e.data["state"])
    assert "Could not reach the hub's HTTPS endpoint" in event.data["state"]
    assert "Trying again in" in event.data["state"]
    assert sim.module.status is Status.CONNECTED  # MQTT is not affected


async def test_a_module_has_no_inbox(service, simulate):
    _, _, cs = await new_module(service)
    sim = await simulate(cs)
    assert sim.module.inbox is None
    with pytest.raises(SimulatorError, match="Only devices"):
        await sim.module.set_inbox_mode(InboxMode.ON_ARRIVAL)


async def test_headless_device_completes_messages_on_arrival_when_asked(hub, service, c2d):
    device, cs = await _new_device(service)
    sim = await Headless.start(
        ["--connection-string-stdin", *_route(hub), "--c2d", "complete"], stdin=cs + "\n"
    )
    try:
        await sim.next_event("connected")
        await c2d.send(device, b'{"on": true}', message_id="m-headless", ack="full")
        received = await sim.next_event("message_received")
        code, _ = await sim.terminate(signal.SIGINT)
    finally:
        sim.kill()
    assert code == 0
    assert received["message"]["messageId"] == "m-headless"
    assert received["message"]["state"] == "completed"
    assert received["message"]["body"] == '{"on": true}'
    assert (await _feedback_for(c2d, "m-headless"))["statusCode"] == "Success"
