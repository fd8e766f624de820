"""Desired round trip through the app's own layers against the same trip on the raw SDKs.

    python benchmarks/simulator_roundtrip.py [--iterations 200] [--warmup 20] [--json OUT]

Against one ``twin-explorer hub`` process (modules reach it through its CONNECT proxy):

* **app**: ``HubService.patch_twin`` (desired ``{"seq": i}``) -> hub -> ``SimulatedModule``
  with the echo behaviour -> reported, until ``HubService.get_twin`` shows ``seq == i``.
* **raw**: ``IoTHubRegistryManager.update_module_twin`` -> hub -> an
  ``azure.iot.device.aio.IoTHubModuleClient`` whose handler reports the keys back ->
  ``get_module_twin`` until ``seq == i``.

Both poll the twin back to back (no sleep), on their own module of the same device, and
the two alternate trip by trip so drift hits both alike. Prints p50/p99/mean of each and
the app/raw ratio (target: the app adds at most 25 %).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from twin_explorer.service.hub import HubService  # noqa: E402
from twin_explorer.simulator import Behaviour, SimulatedModule, Transport, read_ca  # noqa: E402

DEVICE = "bench-sim-device"
TRIP_TIMEOUT = 30.0  # a lost patch must end the run, not hang it


class AppTrip:
    """The round trip through HubService and SimulatedModule."""

    def __init__(self, service: HubService, module_id: str, module: SimulatedModule) -> None:
        self.service, self.module_id, self.module = service, module_id, module

    async def run(self, seq: int) -> float:
        start = time.perf_counter()
        patch = {"properties": {"desired": {"seq": seq}}}
        await self.service.patch_twin(DEVICE, self.module_id, patch, None)
        while True:
            twin = await self.service.get_twin(DEVICE, self.module_id)
            if twin.doc["properties"]["reported"].get("seq") == seq:
                return time.perf_counter() - start


class RawTrip:
    """The same trip written directly on azure-iot-hub and azure-iot-device."""

    def __init__(self, hub: LocalHubProcess, module_id: str, connection_string: str) -> None:
        self.hub, self.module_id, self.connection_string = hub, module_id, connection_string
        self.registry = hub.registry_manager()
        self.client: Any = None

    async def start(self) -> None:
        from azure.iot.device import ProxyOptions
        from azure.iot.device.aio import IoTHubModuleClient

        client = IoTHubModuleClient.create_from_connection_string(
            self.connection_string,
            server_verification_cert=read_ca(self.hub.ca_cert),
            proxy_options=ProxyOptions("HTTP", "127.0.0.1", self.hub.proxy_port),
        )
        await client.connect()

        async def echo(patch: dict) -> None:  # runs on the SDK's handler loop
            await client.patch_twin_reported_properties(
                {k: v for k, v in patch.items() if k != "$version"}
            )

        # The setter blocks until SUBSCRIBE completes: keep it off the loop (A.15).
        await asyncio.to_thread(setattr, client, "on_twin_desired_properties_patch_received", echo)
        self.client = client

    def _trip(self, seq: int) -> float:
        from azure.iot.hub.models import Twin, TwinProperties

        start = time.perf_counter()
        twin = Twin(properties=TwinProperties(desired={"seq": seq}))
        self.registry.update_module_twin(DEVICE, self.module_id, twin, "*")
        while time.perf_counter() - start < TRIP_TIMEOUT:  # a thread cannot be cancelled
            got = self.registry.get_module_twin(DEVICE, self.module_id)
            if (got.properties.reported or {}).get("seq") == seq:
                return time.perf_counter() - start
        raise TimeoutError

    async def run(self, seq: int) -> float:
        return await asyncio.to_thread(self._trip, seq)

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # a stuck connection must not hang the run
                await asyncio.wait_for(self.client.shutdown(), 10)


def _summary(name: str, seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(seconds)
    return {
        "path": name,
        "trips": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


async def measure(hub: LocalHubProcess, iterations: int, warmup: int) -> dict[str, Any]:
    service = HubService(hub.service_connection_string, ca_cert=hub.ca_cert, use_env_proxies=False)
    await service.create_device(DEVICE)
    app_identity = await service.create_module(DEVICE, "app")
    raw_identity = await service.create_module(DEVICE, "raw")
    transport = Transport.for_local_hub(hub.ca_cert, hub.mqtt_port, hub.proxy_port)
    module = SimulatedModule(
        service.connection_string(app_identity), transport=transport, behaviour=Behaviour.ECHO
    )
    await module.start()
    app = AppTrip(service, "app", module)
    raw = RawTrip(hub, "raw", service.connection_string(raw_identity))
    await raw.start()
    times: dict[str, list[float]] = {"app": [], "raw": []}
    try:
        for seq in range(1, warmup + iterations + 1):
            first, second = (app, raw) if seq % 2 else (raw, app)
            for trip in (first, second):
                try:
                    seconds = await asyncio.wait_for(trip.run(seq), TRIP_TIMEOUT)
                except TimeoutError:
                    name = "app" if trip is app else "raw"
                    message = f"{name} trip {seq} did not come back in {TRIP_TIMEOUT} s"
                    raise SystemExit(message) from None
                if seq > warmup:
                    times["app" if trip is app else "raw"].append(seconds)
    finally:
        await module.close()
        await raw.close()
        await service.aclose()
    rows = [_summary("app (HubService + SimulatedModule)", times["app"])]
    rows.append(_summary("raw SDKs", times["raw"]))
    return {
        "rows": rows,
        "ratio_p50": rows[0]["p50_ms"] / rows[1]["p50_ms"],
        "ratio_p99": rows[0]["p99_ms"] / rows[1]["p99_ms"],
        "ratio_mean": rows[0]["mean_ms"] / rows[1]["mean_ms"],
        "module_counters": vars(module.counters),
    }


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'path':<36} {'trips':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}"]
    for row in result["rows"]:
        lines.append(
            f"{row['path']:<36} {row['trips']:>6} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['mean_ms']:>8.2f}"
        )
    lines.append(
        f"{'app / raw':<36} {'':>6} {result['ratio_p50']:>8.3f} "
        f"{result['ratio_p99']:>8.3f} {result['ratio_mean']:>8.3f}"
    )
    verdict = "within" if result["ratio_p50"] <= 1.25 else "OVER"
    lines.append(f"target: the app adds <= 25 % at p50 -> {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument(
        "--keep", type=Path, help="run the hub in this new folder and keep it (with its log)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        # A kept hub logs at debug level: its log is what explains an odd run.
        extra = ["--verbose"] if args.keep else []
        hub = LocalHubProcess(args.keep or Path(tmp) / "hub", extra_args=extra)
        hub.start()
        try:
            result = asyncio.run(measure(hub, args.iterations, args.warmup))
        finally:
            hub.stop()
    print(_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
