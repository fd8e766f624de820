"""The local hub's AMQP endpoint under load, against a ``twin-explorer hub`` process.

    python benchmarks/amqp.py [--iterations 100] [--clients 500] [--messages 5000]
                              [--json OUT]

1. Desired round trip, one module, over AMQP and over MQTT in the same run: the service
   PATCHes desired (REST), the unmodified Node SDK module client (``Amqp`` or ``Mqtt``
   transport, ``tests/node/device_client.js``) gets the patch and reports it back; the
   round trip ends when the report is acknowledged. p50/p99 of each.
2. ``--clients`` AMQP connections (a minimal client over the hub's own codec,
   ``tests/localhub/amqp/raw_client.py``), each a module that authenticated with CBS and
   subscribed to desired properties: the hub's RSS before and after, then one desired
   change for every one of them (PATCHes over 16 HTTPS keep-alive connections) and the
   time until the last client has its patch (target: 2 s for 500).
3. Telemetry ingest over one AMQP link: ``--messages`` unsettled messages pipelined
   within the hub's credit, each accepted once the event log wrote it; messages/s.

Prints a table; ``--json`` also writes the numbers. Runs in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
from roundtrip import percentiles, rss_mb  # noqa: E402

from tests.hubfixtures import auth_header  # noqa: E402
from tests.localhub.amqp.raw_client import RECEIVER, SENDER, RawClient, data_message  # noqa: E402
from tests.node.harness import NodeDevice  # noqa: E402
from twin_explorer.connection.sas import device_resource_uri, generate_device_token  # noqa: E402
from twin_explorer.localhub.core.hub import HubCore  # noqa: E402
from twin_explorer.localhub.protocols.amqp import Data, Message, Symbol  # noqa: E402

API = "api-version=2021-04-12"
RT_DEVICE, RT_MODULE = "rt-device", "rt-module"
PER_DEVICE = 10
SAS = {"authentication": {"symmetricKey": {}, "type": "sas"}}
TIMEOUT = 120.0


def seed(data_dir: Path, clients: int) -> dict[str, Any]:
    """The round-trip module, ``clients`` fleet modules and a telemetry device."""
    fleet = []
    with HubCore.open(data_dir) as core:
        core.put_device(RT_DEVICE, {"status": "enabled", **SAS}, None)
        core.put_module(RT_DEVICE, RT_MODULE, SAS, None)
        core.put_device("ingest", {"status": "enabled", **SAS}, None)
        for i in range(clients):
            device_id, module_id = f"fleet-{i // PER_DEVICE:03d}", f"m{i % PER_DEVICE:02d}"
            if i % PER_DEVICE == 0:
                core.put_device(device_id, {"status": "enabled", **SAS}, None)
            core.put_module(device_id, module_id, SAS, None)
            key = core.get_module(device_id, module_id)["authentication"]["symmetricKey"]
            fleet.append((device_id, module_id, key["primaryKey"]))
        ingest_key = core.get_device("ingest")["authentication"]["symmetricKey"]["primaryKey"]
        return {
            "rt": core.identity_connection_string(RT_DEVICE, RT_MODULE),
            "fleet": fleet,
            "ingest": ingest_key,
            "service": core.service_connection_string("iothubowner", "localhost"),
        }


class Hub:
    """A ``twin-explorer hub`` process on OS-chosen ports."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "twin_explorer", "hub", "--data-dir", str(data_dir),
             "--rest-port", "0", "--mqtt-port", "0", "--amqp-port", "0", "--proxy-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())
        self.ca = Path(self.info["ca_cert"])
        self.tls = ssl.create_default_context(cafile=str(self.ca))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def patch_desired(
    session: aiohttp.ClientSession, hub: Hub, header: str, device: str, module: str, value: Any
) -> None:
    url = f"https://localhost:{hub.info['rest_port']}/twins/{device}/modules/{module}?{API}"
    body = {"properties": {"desired": {"n": value}}}
    async with session.patch(url, json=body, headers={"Authorization": header}) as response:
        assert response.status == 200, await response.text()


# --- 1. one module's desired round trip, AMQP vs MQTT -------------------------------------


async def round_trips(hub: Hub, strings: dict, iterations: int) -> dict[str, dict]:
    header = auth_header(strings["service"])
    results = {}
    connector = aiohttp.TCPConnector(ssl=hub.tls)
    async with aiohttp.ClientSession(connector=connector) as session:
        for transport in ("amqp", "mqtt"):
            port = hub.info[f"{transport}_port"]
            node = await NodeDevice.start(strings["rt"], port, hub.ca, transport=transport)
            async with node:
                await node.call("open")
                await node.call("get_twin")
                await asyncio.sleep(1)  # the desired subscription settles (no event for it)
                samples = []
                for i in range(iterations):
                    value = f"{transport}-{i}"
                    started = time.perf_counter()
                    await patch_desired(session, hub, header, RT_DEVICE, RT_MODULE, value)
                    while True:
                        event = await node.next_event()
                        if event["event"] == "desired" and event["patch"].get("n") == value:
                            break
                    await node.call("report", patch={"n": value})
                    samples.append(time.perf_counter() - started)
                await node.call("close")
            results[transport] = percentiles(samples)
    return results


# --- 2. many connections, one broadcast ----------------------------------------------------


async def fleet_client(hub: Hub, device: str, module: str, key: str) -> tuple[RawClient, Any]:
    client = await RawClient.connect(hub.info["amqp_port"], hub.tls)
    token = generate_device_token(device_resource_uri("localhost", device, module), key)
    status, _ = await client.put_token(token)
    assert status == 200
    address = f"/devices/{device}/modules/{module}/twin"
    sender = await client.attach(address, SENDER)
    receiver = await client.attach(address, RECEIVER)
    subscribe = Message(
        message_annotations={
            Symbol("operation"): "PUT",
            Symbol("resource"): "/notifications/twin/properties/desired",
        },
        body=[Data(b" ")],
    )
    await client.send(sender, subscribe, settled=True)
    await receiver.messages.get()  # status 200
    return client, receiver


async def broadcast(hub: Hub, strings: dict) -> dict[str, float]:
    pid = hub.proc.pid
    before = rss_mb(pid)
    started = time.perf_counter()
    clients: list[tuple[RawClient, Any]] = []
    fleet = strings["fleet"]
    for i in range(0, len(fleet), 50):  # in batches: the gate takes 200 handshakes/s
        clients += await asyncio.gather(*(fleet_client(hub, *each) for each in fleet[i : i + 50]))
    connect_s = time.perf_counter() - started
    await asyncio.sleep(1)
    connected = rss_mb(pid)
    header = auth_header(strings["service"])

    async def arrival(receiver: Any) -> float:
        await receiver.messages.get()
        return time.perf_counter()

    waits = [asyncio.create_task(arrival(receiver)) for _, receiver in clients]
    connector = aiohttp.TCPConnector(ssl=hub.tls, limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(
            *(patch_desired(session, hub, header, d, m, "all") for d, m, _ in fleet)
        )
        patched = time.perf_counter() - started
        async with asyncio.timeout(TIMEOUT):
            last = max(await asyncio.gather(*waits))
    after = rss_mb(pid)
    for client, _ in clients:
        await client.close()
    return {
        "clients": len(clients),
        "connect_s": connect_s,
        "rss_before_mb": before,
        "rss_connected_mb": connected,
        "rss_after_mb": after,
        "patch_calls_s": patched,
        "broadcast_s": last - started,
    }


# --- 3. telemetry ingest -------------------------------------------------------------------


async def ingest(hub: Hub, strings: dict, count: int) -> dict[str, float]:
    client = await RawClient.connect(hub.info["amqp_port"], hub.tls)
    token = generate_device_token(device_resource_uri("localhost", "ingest"), strings["ingest"])
    assert (await client.put_token(token))[0] == 200
    link = await client.attach("/devices/ingest/messages/events", SENDER)
    body = json.dumps({"temperature": 21.5, "humidity": 40}).encode()
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(client.send(link, data_message(body, message_id=str(i))) for i in range(count))
    )
    elapsed = time.perf_counter() - started
    await client.close()
    accepted = sum(type(o).__name__ == "Accepted" for o in outcomes)
    return {"messages": count, "accepted": accepted, "seconds": elapsed, "per_s": count / elapsed}


def print_table(rt: dict, fleet: dict, telemetry: dict) -> None:
    print(f"{'measure':58} {'value':>14}")
    for transport, numbers in rt.items():
        name = f"desired round trip, Node {transport.upper()} module (n={numbers['n']})"
        print(f"{name:58} {numbers['p50_ms']:9.1f} p50 ms")
        print(f"{'':58} {numbers['p99_ms']:9.1f} p99 ms")
    rows = [
        (f"{fleet['clients']} AMQP clients connected + subscribed (s)", fleet["connect_s"]),
        ("hub RSS before they connected (MiB)", fleet["rss_before_mb"]),
        ("hub RSS with them connected (MiB)", fleet["rss_connected_mb"]),
        ("hub RSS after the broadcast (MiB)", fleet["rss_after_mb"]),
        ("desired change to all: PATCH calls done (s)", fleet["patch_calls_s"]),
        ("desired change to all: last client has it (s)", fleet["broadcast_s"]),
        (
            f"telemetry over one AMQP link ({telemetry['messages']} msgs, msgs/s)",
            telemetry["per_s"],
        ),
    ]
    for name, value in rows:
        print(f"{name:58} {value:14.2f}")


async def run(hub: Hub, strings: dict, args: argparse.Namespace) -> dict:
    rt = await round_trips(hub, strings, args.iterations)
    fleet = await broadcast(hub, strings)
    telemetry = await ingest(hub, strings, args.messages)
    return {"round_trip": rt, "broadcast": fleet, "telemetry": telemetry}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-amqp-") as tmp:
        data_dir = Path(tmp) / "hub"
        strings = seed(data_dir, args.clients)
        env = {**os.environ, "TWIN_EXPLORER_HOME": str(Path(tmp) / "home")}
        hub = Hub(data_dir, env)
        try:
            results = asyncio.run(run(hub, strings, args))
        finally:
            hub.stop()
    print_table(results["round_trip"], results["broadcast"], results["telemetry"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
