"""Device-to-cloud telemetry through the local hub: in the core, and end to end over MQTT.

    python benchmarks/telemetry.py [--core-messages 50000] [--devices 4] [--messages 500]
                                   [--window 100] [--json OUT]

1. Core: ``HubCore.devices.telemetry`` for ``--core-messages`` messages (three custom
   properties, the system properties the SDK sends, a 64-byte JSON body), written to the
   event log in batches of 1, 16, 64 and 512 (one commit per batch, as a loop turn with
   that many messages would): messages/s and how long one commit holds the loop, the
   best of three runs.
2. End to end: a ``twin-explorer hub`` process and ``--devices`` azure-iot-device (aio)
   clients through its CONNECT proxy, each sending ``--messages`` messages: one at a time
   (each ``send_message`` returns on PUBACK: latency), then ``--window`` in flight per
   client (throughput).

Prints a table; ``--json`` also writes the numbers. Runs in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hubfixtures import LocalHubProcess  # noqa: E402
from twin_explorer.localhub.core.auth import Identity  # noqa: E402
from twin_explorer.localhub.core.hub import HubCore  # noqa: E402

SAS = {"status": "enabled", "authentication": {"symmetricKey": {}, "type": "sas"}}
PROPERTIES = {"level": "info", "sensor": "temperature", "site": "north"}
SYSTEM = {"$.ct": "application/json", "$.ce": "utf-8", "$.mid": "m"}
BODY = json.dumps({"temperature": 21.5, "humidity": 40, "pad": "x" * 20}).encode()
BATCHES = (1, 16, 64, 512)  # 512: the most the event log holds before it writes
REPEATS = 3  # the machine may be shared: the best of a few runs


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# --- 1. the core -----------------------------------------------------------------------------


def core_run(data_dir: Path, count: int, batch: int) -> dict[str, float]:
    """``count`` messages through the core, committed every ``batch`` messages."""
    with HubCore.open(data_dir) as core:
        core.put_device("bench", SAS, None)
        identity = Identity("bench", None)
        telemetry, commit = core.devices.telemetry, core.event_log.flush
        commits: list[float] = []
        start = time.perf_counter()
        for i in range(count):
            telemetry(identity, PROPERTIES, SYSTEM, BODY)
            if (i + 1) % batch == 0:
                before = time.perf_counter()
                commit()
                commits.append(time.perf_counter() - before)
        commit()
        elapsed = time.perf_counter() - start
        assert core.telemetry_count("bench") == count
    return {
        "batch": batch,
        "messages_per_s": count / elapsed,
        "us_per_message": elapsed / count * 1e6,
        "commit_p50_ms": statistics.median(commits) * 1000,
        "commit_max_ms": max(commits) * 1000,
    }


def core_bench(root: Path, count: int) -> list[dict[str, float]]:
    return [
        max(
            (core_run(root / f"core-{batch}-{n}", count, batch) for n in range(REPEATS)),
            key=lambda row: row["messages_per_s"],
        )
        for batch in BATCHES
    ]


# --- 2. end to end ---------------------------------------------------------------------------


def seed(data_dir: Path, devices: int) -> list[str]:
    with HubCore.open(data_dir) as core:
        strings = []
        for i in range(devices):
            core.put_device(f"sender-{i}", SAS, None)
            strings.append(core.identity_connection_string(f"sender-{i}"))
    return strings


async def end_to_end(hub: LocalHubProcess, strings: list[str], count: int, window: int) -> dict:
    from azure.iot.device import Message, ProxyOptions
    from azure.iot.device.aio import IoTHubDeviceClient

    ca_pem = await asyncio.to_thread(Path(hub.ca_cert).read_text)
    proxy = ProxyOptions("HTTP", "127.0.0.1", hub.proxy_port)
    clients = [
        IoTHubDeviceClient.create_from_connection_string(
            s, server_verification_cert=ca_pem, proxy_options=proxy
        )
        for s in strings
    ]

    def message(i: int) -> Any:
        msg = Message(BODY, content_encoding="utf-8", content_type="application/json")
        msg.custom_properties.update(PROPERTIES)
        msg.message_id = str(i)
        return msg

    latencies: list[float] = []

    async def one_at_a_time(client: Any) -> None:
        for i in range(count):
            start = time.perf_counter()
            await client.send_message(message(i))
            latencies.append(time.perf_counter() - start)

    async def windowed(client: Any) -> None:
        for first in range(0, count, window):
            batch = range(first, min(count, first + window))
            await asyncio.gather(*(client.send_message(message(i)) for i in batch))

    try:
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.gather(*(c.send_message(message(-1)) for c in clients))  # warm up
        start = time.perf_counter()
        await asyncio.gather(*(one_at_a_time(c) for c in clients))
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(windowed(c) for c in clients))
        pipelined = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.shutdown() for c in clients), return_exceptions=True)
    total = len(clients) * count
    return {
        "sequential_messages_per_s": total / sequential,
        "send_p50_ms": statistics.median(latencies) * 1000,
        "send_p99_ms": percentile(latencies, 0.99) * 1000,
        "pipelined_messages_per_s": total / pipelined,
    }


def hub_bench(root: Path, args: argparse.Namespace) -> dict:
    data_dir = root / "hub"
    strings = seed(data_dir, args.devices)
    hub = LocalHubProcess(data_dir)
    hub.start()
    try:
        return asyncio.run(end_to_end(hub, strings, args.messages, args.window))
    finally:
        hub.stop()
        hub.cleanup()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core-messages", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=("core", "e2e"), help="run one part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        core = [] if args.only == "e2e" else core_bench(root, args.core_messages)
        e2e = None if args.only == "core" else hub_bench(root, args)

    if core:
        print_core(args, core)
    if e2e:
        print_e2e(args, e2e)
    if args.json:
        args.json.write_text(json.dumps({"core": core, "end_to_end": e2e}, indent=2))


def print_core(args: argparse.Namespace, core: list[dict[str, float]]) -> None:
    print(f"\nCore: {args.core_messages} messages through HubCore.devices.telemetry")
    print(f"{'commit every':>12} {'msg/s':>10} {'us/msg':>8} {'commit p50 ms':>14} {'max ms':>8}")
    for row in core:
        print(
            f"{row['batch']:>12} {row['messages_per_s']:>10,.0f} {row['us_per_message']:>8.1f} "
            f"{row['commit_p50_ms']:>14.2f} {row['commit_max_ms']:>8.2f}"
        )


def print_e2e(args: argparse.Namespace, e2e: dict[str, float]) -> None:
    print(
        f"\nEnd to end: {args.devices} SDK device clients x {args.messages} messages "
        "over MQTT (hub process, CONNECT proxy)"
    )
    print(
        f"  one at a time:      {e2e['sequential_messages_per_s']:>8,.0f} msg/s  "
        f"send p50 {e2e['send_p50_ms']:.2f} ms, p99 {e2e['send_p99_ms']:.2f} ms"
    )
    print(f"  {args.window} in flight each: {e2e['pipelined_messages_per_s']:>8,.0f} msg/s")


if __name__ == "__main__":
    main()
