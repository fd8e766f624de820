"""SimulatedModule against a real local hub, the service side through HubService.

Each test: the service changes something, the simulated module's behaviour answers, and
the service reads the result back from the hub.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.simulator.conftest import new_module, transport_for
from twin_explorer.service.hub import HubService
from twin_explorer.simulator import (
    Behaviour,
    InvalidPatch,
    MethodRule,
    MethodTable,
    Mode,
    SimulatedModule,
    Status,
    Unauthorized,
)
from twin_explorer.simulator.behaviour import STAMP_KEY
from twin_explorer.twin.events import Direction, Section


async def _patch_desired(service: HubService, device: str, module: str, desired: dict) -> int:
    twin = await service.patch_twin(device, module, {"properties": {"desired": desired}}, None)
    return twin.doc["properties"]["desired"]["$version"]


async def _reported(service: HubService, device: str, module: str) -> dict:
    return (await service.get_twin(device, module)).doc["properties"]["reported"]


async def test_echo_copies_desired_into_reported(service, simulate):
    device, module, cs = await new_module(service)
    sim = await simulate(cs, behaviour=Behaviour.ECHO)
    assert sim.module.status is Status.CONNECTED
    assert sim.recorder.names()[0] == "connecting"

    version = await _patch_desired(service, device, module, {"temp": 21, "fan": {"on": True}})
    await sim.recorder.named("reported_sent")

    reported = await _reported(service, device, module)
    assert reported["temp"] == 21
    assert reported["fan"] == {"on": True}
    received = await sim.recorder.named("desired_received")
    assert received.data == {
        "patch": {"temp": 21, "fan": {"on": True}},
        "version": version,
        "origin": "patch",
    }
    kinds = [(p.direction, p.section, p.version) for p in sim.patches]
    assert kinds == [
        (Direction.RECEIVED, Section.DESIRED, version),
        (Direction.REPORTED, Section.REPORTED, None),
    ]
    assert sim.patches[0].source == f"simulator:{device}/{module}"

    # A deletion travels too: null removes the reported key.
    mark = len(sim.recorder.events)
    await _patch_desired(service, device, module, {"fan": None})
    await sim.recorder.named("reported_sent", after=mark)
    assert "fan" not in await _reported(service, device, module)
    assert sim.module.counters.desired_received == 2
    assert sim.module.counters.reported_sent == 2


async def test_acknowledge_answers_the_plug_and_play_way(service, simulate):
    device, module, cs = await new_module(service)
    sim = await simulate(cs, behaviour=Behaviour.ACKNOWLEDGE)

    version = await _patch_desired(service, device, module, {"targetTemperature": 22.5})
    await sim.recorder.named("reported_sent")

    reported = await _reported(service, device, module)
    assert reported["targetTemperature"] == {
        "value": 22.5,
        "ac": 200,
        "av": version,
        "ad": "Successfully executed patch",
    }


async def test_stamp_reports_when_the_last_change_arrived(service, simulate):
    device, module, cs = await new_module(service)
    sim = await simulate(cs, behaviour=Behaviour.STAMP)

    await _patch_desired(service, device, module, {"mode": "eco"})
    sent = await sim.recorder.named("reported_sent")

    reported = await _reported(service, device, module)
    assert reported[STAMP_KEY] == sim.module.last_desired_at
    assert sent.data["patch"] == {STAMP_KEY: sim.module.last_desired_at}
    assert "mode" not in reported


async def test_manual_reports_only_by_hand(service, simulate):
    device, module, cs = await new_module(service)
    sim = await simulate(cs, behaviour=Behaviour.MANUAL)

    await _patch_desired(service, device, module, {"firmware": "2.0"})
    await sim.recorder.named("desired_received")
    assert sim.module.counters.reported_sent == 0

    await sim.module.report({"firmware": "2.0", "progress": {"percent": 100}})
    reported = await _reported(service, device, module)
    assert reported["firmware"] == "2.0"
    assert reported["progress"] == {"percent": 100}
    assert sim.module.counters.reported_sent == 1

    with pytest.raises(InvalidPatch) as caught:
        await sim.module.report({"bad.key": 1})
    assert caught.value.issues
    assert sim.module.counters.reported_sent == 1
    assert sim.module.counters.reported_failed == 1
    failed = await sim.recorder.named("report_failed")
    assert "bad.key" in failed.data["reason"]


async def test_the_twin_view_follows_patches(service, simulate):
    device, module, cs = await new_module(service)
    await _patch_desired(service, device, module, {"before": 1})
    sim = await simulate(cs, behaviour=Behaviour.ECHO)
    assert sim.module.twin["desired"]["before"] == 1  # fetched on connect

    version = await _patch_desired(service, device, module, {"after": 2})
    await sim.recorder.wait(
        lambda e: e.name == "twin" and e.data["twin"]["reported"].get("after") == 2
    )
    assert sim.module.twin["desired"]["$version"] == version
    assert sim.module.twin["desired"]["after"] == 2


async def test_methods_answer_with_the_configured_status_and_payload(service, simulate):
    device, module, cs = await new_module(service)
    table = MethodTable(rules={"reboot": MethodRule(Mode.FIXED, 201, {"rebooting": True})})
    sim = await simulate(cs, methods=table)

    result = await service.invoke_method(device, module, "reboot", {"delay": 5})
    assert (result.status, result.payload) == (201, {"rebooting": True})
    answered = await sim.recorder.named("method_answered")
    assert answered.data["request"] == {"delay": 5}

    unknown = await service.invoke_method(device, module, "selfDestruct")
    assert unknown.status == 404
    await sim.recorder.wait(lambda e: e.name == "method_answered" and e.data["status"] == 404)
    assert sim.module.counters.methods_answered == 2


async def test_an_asked_method_waits_for_its_answer(service, simulate):
    device, module, cs = await new_module(service)
    table = MethodTable(rules={"confirm": MethodRule(Mode.ASK)})
    sim = await simulate(cs, methods=table)

    call = asyncio.ensure_future(service.invoke_method(device, module, "confirm", [1, 2]))
    requested = await sim.recorder.named("method_requested")
    pending = sim.module.pending[requested.data["request_id"]]
    assert (pending.name, pending.payload) == ("confirm", [1, 2])
    assert 0 < pending.remaining() <= table.ask_timeout
    assert pending.answer(202, {"ok": "yes"})
    assert not pending.answer(500)  # only the first answer counts

    result = await call
    assert (result.status, result.payload) == (202, {"ok": "yes"})
    assert not sim.module.pending


async def test_an_unanswered_method_expires(service, simulate):
    device, module, cs = await new_module(service)
    table = MethodTable(rules={"confirm": MethodRule(Mode.ASK)}, ask_timeout=0.2)
    sim = await simulate(cs, methods=table)

    call = asyncio.ensure_future(
        service.invoke_method(device, module, "confirm", response_timeout=5)
    )
    requested = await sim.recorder.named("method_requested")
    expired = await sim.recorder.named("method_expired")
    assert expired.data["request_id"] == requested.data["request_id"]
    assert not sim.module.pending
    call.cancel()  # the hub answers the service with a timeout later; not this test's business
    await asyncio.gather(call, return_exceptions=True)


async def test_two_modules_of_one_device_at_once(service, simulate):
    device, first_id, first_cs = await new_module(service)
    _, second_id, second_cs = await new_module(service, device)
    first = await simulate(first_cs, behaviour=Behaviour.ECHO)
    second = await simulate(second_cs, behaviour=Behaviour.ACKNOWLEDGE)

    await _patch_desired(service, device, first_id, {"who": "first"})
    await _patch_desired(service, device, second_id, {"who": "second"})
    await first.recorder.named("reported_sent")
    await second.recorder.named("reported_sent")
    assert (await _reported(service, device, first_id))["who"] == "first"
    assert (await _reported(service, device, second_id))["who"]["value"] == "second"
    assert first.module.counters.desired_received == 1  # each only saw its own patch

    # Closing one leaves the other running.
    await first.module.close()
    assert first.module.status is Status.CLOSED
    mark = len(second.recorder.events)
    await _patch_desired(service, device, second_id, {"who": "still here"})
    await second.recorder.named("reported_sent", after=mark)
    assert (await _reported(service, device, second_id))["who"]["value"] == "still here"
    assert second.module.status is Status.CONNECTED


async def test_a_wrong_key_fails_with_plain_words(service, hub):
    _, _, cs = await new_module(service)
    wrong = cs.replace(cs.split("SharedAccessKey=")[1], "d3Jvbmcga2V5IHdyb25nIGtleQ==")
    sim = SimulatedModule(wrong, transport=transport_for(hub))
    with pytest.raises(Unauthorized):
        await sim.start()
    assert sim.status is Status.FAILED
    assert "refused the credentials" in sim.reason
    await sim.close()


async def test_a_device_can_be_simulated_too(service, simulate):
    device = "sim-device-variant"
    identity = await service.create_device(device)
    sim = await simulate(service.connection_string(identity), behaviour=Behaviour.ECHO)
    assert not sim.module.is_module and sim.module.identity == device

    await service.patch_twin(device, None, {"properties": {"desired": {"d": 1}}}, None)
    await sim.recorder.named("reported_sent")
    assert (await service.get_twin(device)).doc["properties"]["reported"]["d"] == 1
