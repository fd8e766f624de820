"""The hub goes away and comes back: the module reconnects by itself and catches up.

The module reaches the hub's proxy through a Gate, so the test decides when it may get
back: the desired change is made on the restarted hub while the module is still shut out.
"""

from __future__ import annotations

import asyncio

from tests.gate import Gate
from tests.hubfixtures import HubProcess, service_for
from tests.simulator.conftest import Recorder, new_module
from twin_explorer.simulator import Behaviour, SimulatedModule, Status, Transport, read_ca


async def _behind_a_gate(hub: HubProcess, cs: str) -> tuple[SimulatedModule, Recorder, Gate]:
    """An echoing module reaching the hub's proxy through a Gate; started."""
    gate = Gate(("127.0.0.1", hub.proxy_port))
    await gate.start()
    transport = Transport(
        ca_pem=read_ca(hub.ca_cert), proxy=("127.0.0.1", gate.port), retry_interval=1
    )
    module = SimulatedModule(cs, transport=transport, behaviour=Behaviour.ECHO)
    recorder = Recorder()
    module.subscribe(recorder)
    await module.start()
    return module, recorder, gate


async def test_the_module_catches_up_after_a_hub_restart(local_hub):
    service = service_for(local_hub)
    device, module_id, cs = await new_module(service)
    module, recorder, gate = await _behind_a_gate(local_hub, cs)
    try:
        await service.patch_twin(
            device, module_id, {"properties": {"desired": {"phase": "before"}}}, None
        )
        await recorder.named("reported_sent")

        gate.open = False
        await asyncio.to_thread(local_hub.stop)
        await recorder.named("disconnected")
        await service.aclose()
        await asyncio.to_thread(local_hub.start)  # same data dir; ports may differ
        gate.target = ("127.0.0.1", local_hub.proxy_port)
        service = service_for(local_hub)
        twin = await service.patch_twin(
            device,
            module_id,
            {"properties": {"desired": {"phase": "while away", "extra": 1}}},
            None,
        )
        away_version = twin.doc["properties"]["desired"]["$version"]
        assert module.status in (Status.DISCONNECTED, Status.RECONNECTING)

        mark = len(recorder.events)
        gate.open = True
        await recorder.wait(lambda e: e.data.get("reason", "").startswith("caught up"), 30)
        caught_up = recorder.events[mark:]
        assert [e.data["reason"] for e in caught_up if e.name == "syncing"] == [
            "reconnected",
            "re-subscribing to desired patches and methods",
            "fetching the twin",
        ]
        handled = next(e for e in caught_up if e.name == "desired_received")
        assert handled.data == {
            "patch": {"phase": "while away", "extra": 1},
            "version": away_version,
            "origin": "catch-up",
        }
        assert module.status is Status.CONNECTED
        assert f"-> {away_version}" in module.reason
        reported = (await service.get_twin(device, module_id)).doc["properties"]["reported"]
        assert (reported["phase"], reported["extra"]) == ("while away", 1)

        # The restarted hub kept no session; the re-subscription makes live patches flow.
        mark = len(recorder.events)
        await service.patch_twin(
            device, module_id, {"properties": {"desired": {"phase": "after"}}}, None
        )
        await recorder.wait(
            lambda e: e.name == "reported_sent" and e.data["patch"].get("phase") == "after",
            after=mark,
        )
        reasons = recorder.reasons()
        assert any(r.startswith("The connection dropped") for r in reasons), reasons
        assert any("Retrying every 1 s" in r for r in reasons), reasons
    finally:
        await module.close()
        await service.aclose()
        await gate.close()


async def test_a_short_drop_is_survived_and_caught_up(hub, service):
    device, module_id, cs = await new_module(service)
    module, recorder, gate = await _behind_a_gate(hub, cs)
    try:
        mark = len(recorder.events)
        gate.cut()  # the SDK reconnects about 10 ms later, through the open gate
        await recorder.wait(
            lambda e: e.data.get("reason", "").startswith(("up to", "caught")), 30, after=mark
        )
        assert module.status is Status.CONNECTED
        assert any(r.startswith("reconnected") for r in recorder.reasons(mark))

        mark = len(recorder.events)
        await service.patch_twin(
            device, module_id, {"properties": {"desired": {"after": "drop"}}}, None
        )
        await recorder.named("reported_sent", after=mark)
        reported = (await service.get_twin(device, module_id)).doc["properties"]["reported"]
        assert reported["after"] == "drop"
    finally:
        await module.close()
        await gate.close()


async def test_a_drop_the_sdk_hid_still_leads_to_a_catch_up(service, simulate):
    # The SDK's state handler reads ``connected`` only when it runs: after a quick drop
    # and reconnect, the notices can both say "connected". The module must catch up then.
    _, _, cs = await new_module(service)
    sim = await simulate(cs, behaviour=Behaviour.ECHO)
    await sim.recorder.named("connected")
    mark = len(sim.recorder.events)
    sim.module._connection_changed(True)  # as posted by the SDK's handler
    done = await sim.recorder.wait(lambda e: e.name == "connected", after=mark)
    assert done.data["reason"].startswith("up to date")
    reasons = sim.recorder.reasons(mark)
    assert reasons[0] == "reconnected at once after a drop (no reason given)"
    assert "fetching the twin" in reasons
