"""Telemetry from a simulated module, counted by the local hub's telemetry buffer."""

from __future__ import annotations

import json
import random

from tests.hubfixtures import RestClient
from tests.simulator.conftest import new_module
from twin_explorer.simulator import TelemetryTemplate


async def _hub_telemetry(hub, device: str, module: str) -> dict:
    client = RestClient(
        f"https://{hub.hostname}:{hub.rest_port}", hub.service_connection_string, hub.ca_cert
    )
    try:
        status, body = await client.json(
            "GET", f"/_localhub/telemetry/{device}/modules/{module}", api_version=None
        )
    finally:
        await client.close()
    assert status == 200, body
    return body


async def test_one_message_with_properties(hub, service, simulate):
    device, module, cs = await new_module(service)
    sim = await simulate(cs)

    assert await sim.module.send_telemetry('{"temperature": 20.5}', {"alert": "no"})

    seen = await _hub_telemetry(hub, device, module)
    assert seen["count"] == 1
    message = seen["messages"][0]
    assert json.loads(message["body"]) == {"temperature": 20.5}
    assert message["properties"]["alert"] == "no"
    assert sim.module.counters.telemetry_sent == 1


async def test_a_stream_from_a_template_is_counted_by_the_hub(hub, service, simulate):
    device, module, cs = await new_module(service)
    sim = await simulate(cs)
    template = TelemetryTemplate.parse(
        '{"n": "{{counter}}", "t": "{{random:10:20}}", "label": "msg {{counter}}"}',
        {"seq": "{{counter}}"},
    )

    sim.module.start_telemetry(template, 0.02)
    assert sim.module.telemetry_running
    await sim.recorder.wait(lambda e: e.name == "telemetry_sent" and e.data["sent"] >= 5)
    sim.module.stop_telemetry()
    assert not sim.module.telemetry_running

    seen = await _hub_telemetry(hub, device, module)
    assert seen["count"] == sim.module.counters.telemetry_sent >= 5
    assert sim.module.counters.telemetry_failed == 0
    bodies = [json.loads(m["body"]) for m in seen["messages"]]
    assert [b["n"] for b in bodies] == list(range(1, len(bodies) + 1))
    assert all(10 <= b["t"] <= 20 and b["label"] == f"msg {b['n']}" for b in bodies)
    assert [m["properties"]["seq"] for m in seen["messages"]] == [str(b["n"]) for b in bodies]


async def test_a_closed_module_counts_a_failed_message(service, simulate):
    _, _, cs = await new_module(service)
    sim = await simulate(cs)
    await sim.module.close()

    message = TelemetryTemplate.parse('{"x": 1}').render(1, rng=random.Random(1))
    assert not await sim.module.send_telemetry(message.body)
    assert sim.module.counters.telemetry_failed == 1
    failed = await sim.recorder.named("telemetry_failed")
    assert "not connected" in failed.data["reason"]
