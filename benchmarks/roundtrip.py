"""Desired-property round trips through a ``twin-explorer hub`` process, with the real SDKs.

    python benchmarks/roundtrip.py [--iterations 200] [--modules 200] [--workers 4]
                                   [--waves 5] [--service app,sdk] [--json OUT]

1. One module: the service PATCHes desired (azure-iot-hub), the module's handler
   (azure-iot-device, aio) reports it back, and the round trip ends when the service's
   twin GET shows the report. Split into: service PATCH call, PATCH -> module handler,
   handler -> reported PATCH answered (204), and the whole loop including that GET.
   Two service sides: the app's ``HubService`` (keep-alive sessions) and the SDK with its
   defaults (a new TLS connection per call). Repeated for the first side while the
   ``--modules`` below are connected.
2. Many modules: ``--modules`` SDK module clients in ``--workers`` subprocesses (the SDK
   runs several threads per client), all connected through the hub's CONNECT proxy.
   Then one desired PATCH per module, issued as fast as possible over 16 HTTPS keep-alive
   connections, and the time until every module's handler has its patch; ``--waves``
   times. Also the hub's memory, and the workers' threads and memory.

Prints a table; ``--json`` also writes the numbers. Runs in a temporary directory.
Arrival times compare ``time.monotonic()`` across processes (one clock on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hubfixtures import LocalHubProcess, auth_header  # noqa: E402
from twin_explorer.localhub.core.hub import HubCore  # noqa: E402

ROUND_DEVICE, ROUND_MODULE = "rt-device", "rt-module"
MODULES_PER_DEVICE = 10
TIMEOUT = 120.0


# --- shared ---------------------------------------------------------------------------------


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def module_client(connection_string: str, ca_pem: str, proxy_port: int) -> Any:
    from azure.iot.device import ProxyOptions
    from azure.iot.device.aio import IoTHubModuleClient

    return IoTHubModuleClient.create_from_connection_string(
        connection_string,
        server_verification_cert=ca_pem,
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", proxy_port),
    )


# --- 1. one module, desired -> reported -> service sees it ---------------------------------


class ServiceSide:
    """The service end of a round trip: PATCH desired, GET the twin's reported ``ack``."""

    label: str

    async def patch(self, n: int) -> None:
        raise NotImplementedError

    async def reported_ack(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class AppService(ServiceSide):
    """Twin Explorer's ``HubService``: the SDK with keep-alive sessions on its own pool."""

    label = "Twin Explorer HubService"

    def __init__(self, hub: LocalHubProcess) -> None:
        from twin_explorer.service.hub import HubService

        self._service = HubService(
            hub.service_connection_string, ca_cert=hub.ca_cert, use_env_proxies=False
        )

    async def patch(self, n: int) -> None:
        await self._service.patch_twin(
            ROUND_DEVICE, ROUND_MODULE, {"properties": {"desired": {"n": n}}}, None
        )

    async def reported_ack(self) -> Any:
        twin = await self._service.get_twin(ROUND_DEVICE, ROUND_MODULE)
        return twin.reported.get("ack")

    async def close(self) -> None:
        await self._service.aclose()


class SdkDefaults(ServiceSide):
    """A plain ``IoTHubRegistryManager``: msrest opens a new TLS connection per call."""

    label = "azure-iot-hub defaults"

    def __init__(self, hub: LocalHubProcess) -> None:
        self._manager = hub.registry_manager()

    async def patch(self, n: int) -> None:
        body = {"properties": {"desired": {"n": n}}}
        await asyncio.to_thread(self._manager.update_module_twin, ROUND_DEVICE, ROUND_MODULE, body)

    async def reported_ack(self) -> Any:
        twin = await asyncio.to_thread(self._manager.get_module_twin, ROUND_DEVICE, ROUND_MODULE)
        return twin.properties.reported["ack"]


async def single_round_trips(
    hub: LocalHubProcess, connection_string: str, count: int, service: ServiceSide
) -> dict:
    loop = asyncio.get_running_loop()
    ca_pem = await asyncio.to_thread(Path(hub.ca_cert).read_text)
    module = module_client(connection_string, ca_pem, hub.proxy_port)
    reported: asyncio.Queue[tuple[int, float, float]] = asyncio.Queue()

    async def on_patch(patch: dict) -> None:
        # Runs on the SDK's handler loop: report back, then tell the benchmark loop.
        received = time.perf_counter()
        await module.patch_twin_reported_properties({"ack": patch["n"]})
        answered = time.perf_counter()
        loop.call_soon_threadsafe(reported.put_nowait, (patch["n"], received, answered))

    rows: dict[str, list[float]] = {"patch": [], "deliver": [], "report": [], "total": []}
    try:
        await module.connect()
        await asyncio.to_thread(
            setattr, module, "on_twin_desired_properties_patch_received", on_patch
        )
        for n in range(-3, count):  # three warm-up trips, not counted
            start = time.perf_counter()
            await service.patch(n)
            patched = time.perf_counter()
            acked, received, answered = await asyncio.wait_for(reported.get(), TIMEOUT)
            assert acked == n, (acked, n)
            assert await service.reported_ack() == n
            done = time.perf_counter()
            if n < 0:
                continue
            rows["patch"].append(patched - start)
            rows["deliver"].append(received - start)
            rows["report"].append(answered - received)
            rows["total"].append(done - start)
    finally:
        await module.shutdown()
    return {name: percentiles(samples) for name, samples in rows.items()}


async def all_single_round_trips(
    hub: LocalHubProcess, connection_string: str, count: int, sides: list[str]
) -> dict[str, dict]:
    results = {}
    for name in sides:
        service = SIDES[name](hub)
        try:
            results[name] = await single_round_trips(hub, connection_string, count, service)
        finally:
            await service.close()
    return results


SIDES: dict[str, type[ServiceSide]] = {"app": AppService, "sdk": SdkDefaults}


# --- 2. many modules in worker processes ------------------------------------------------------


async def worker_main() -> None:
    """``--worker``: connect the clients named on stdin, report every patch they get."""
    config = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=64))
    arrivals: asyncio.Queue[tuple[int, Any, float]] = asyncio.Queue()
    clients = [
        module_client(cs, config["ca_pem"], config["proxy_port"]) for cs in config["clients"]
    ]

    def handler(index: int):
        def on_patch(patch: dict) -> None:
            now = time.monotonic()
            loop.call_soon_threadsafe(arrivals.put_nowait, (index, patch.get("wave"), now))

        return on_patch

    try:
        await asyncio.gather(*(client.connect() for client in clients))
        await asyncio.gather(
            *(
                asyncio.to_thread(
                    setattr, client, "on_twin_desired_properties_patch_received", handler(i)
                )
                for i, client in enumerate(clients)
            )
        )
        _emit({"ready": len(clients), "threads": threading.active_count(), "rss_mb": rss_mb()})
        stdin_closed = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
        while True:
            got = asyncio.ensure_future(arrivals.get())
            done, _ = await asyncio.wait({got, stdin_closed}, return_when=asyncio.FIRST_COMPLETED)
            if got in done:
                index, wave, at = got.result()
                _emit({"arrival": config["first"] + index, "wave": wave, "t": at})
            else:
                got.cancel()
                break
    finally:
        await asyncio.gather(*(c.shutdown() for c in clients), return_exceptions=True)


def _emit(line: dict) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class Worker:
    """A worker subprocess whose stdout lines land in one shared queue."""

    def __init__(self, config: dict, lines: asyncio.Queue, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(config) + "\n")
        self.process.stdin.flush()
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read, args=(loop, lines), daemon=True)
        self._reader.start()

    def _read(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            loop.call_soon_threadsafe(lines.put_nowait, json.loads(line))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def broadcast(
    hub: LocalHubProcess,
    strings: list[tuple[str, str, str]],
    workers: int,
    waves: int,
    while_connected: Callable[[], Awaitable[Any]],
) -> dict:
    import aiohttp

    ca_pem = await asyncio.to_thread(Path(hub.ca_cert).read_text)
    lines: asyncio.Queue[dict] = asyncio.Queue()
    hub_rss_idle = rss_mb(hub.pid)
    per_worker = -(-len(strings) // workers)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    pool = [
        Worker(
            {
                "ca_pem": ca_pem,
                "proxy_port": hub.proxy_port,
                "first": first,
                "clients": [cs for _, _, cs in strings[first : first + per_worker]],
            },
            lines,
            env,
        )
        for first in range(0, len(strings), per_worker)
    ]
    result: dict[str, Any] = {"modules": len(strings), "workers": len(pool)}
    try:
        ready = []
        while len(ready) < len(pool):
            line = await asyncio.wait_for(lines.get(), TIMEOUT * 3)
            if "ready" in line:
                ready.append(line)
        result["connect_all_s"] = time.perf_counter() - started
        result["hub_rss_mb_idle"] = hub_rss_idle
        result["hub_rss_mb_connected"] = rss_mb(hub.pid)
        result["hub_threads"] = thread_count(hub.pid)
        result["worker_threads"] = [r["threads"] for r in ready]
        result["worker_rss_mb"] = [round(r["rss_mb"], 1) for r in ready]
        result["threads_per_client"] = sum(r["threads"] for r in ready) / len(strings)

        base = f"https://{hub.hostname}:{hub.rest_port}"
        headers = {"Authorization": auth_header(hub.service_connection_string)}
        tls = ssl.create_default_context(cafile=hub.ca_cert)
        connector = aiohttp.TCPConnector(ssl=tls, limit=16)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            await _warm_up(session, base, strings)
            result["waves"] = [
                await _wave(session, base, strings, wave, lines) for wave in range(1, waves + 1)
            ]
        result["single"] = await while_connected()
    finally:
        for worker in pool:
            worker.stop()
    return result


async def _warm_up(session: Any, base: str, strings: list[tuple[str, str, str]]) -> None:
    """Open the 16 HTTPS connections first, so the first wave times what the others do."""

    async def get(device_id: str, module_id: str) -> None:
        url = f"{base}/twins/{device_id}/modules/{module_id}?api-version=2021-04-12"
        async with session.get(url) as response:
            assert response.status == 200, response.status
            await response.read()

    await asyncio.gather(*(get(d, m) for d, m, _ in strings[:16]))


async def _wave(
    session: Any, base: str, strings: list[tuple[str, str, str]], wave: int, lines: asyncio.Queue
) -> dict:
    pending = list(range(len(strings)))
    semaphore = asyncio.Semaphore(16)

    async def patch(index: int) -> None:
        device_id, module_id, _ = strings[index]
        url = f"{base}/twins/{device_id}/modules/{module_id}?api-version=2021-04-12"
        async with (
            semaphore,
            session.patch(url, json={"properties": {"desired": {"wave": wave}}}) as r,
        ):
            assert r.status == 200, r.status
            await r.read()

    start = time.monotonic()
    await asyncio.gather(*(patch(i) for i in pending))
    issued = time.monotonic() - start
    arrivals: dict[int, float] = {}
    while len(arrivals) < len(strings):
        line = await asyncio.wait_for(lines.get(), TIMEOUT)
        if line.get("wave") == wave:
            arrivals[line["arrival"]] = line["t"] - start
    times = sorted(arrivals.values())
    return {
        "wave": wave,
        "issue_all_s": issued,
        "first_s": times[0],
        "p50_s": statistics.median(times),
        "all_s": times[-1],
    }


# --- main -----------------------------------------------------------------------------------


def seed(data_dir: Path, modules: int) -> tuple[str, list[tuple[str, str, str]]]:
    """The round-trip module and ``modules`` more across devices; connection strings."""
    sas = {"authentication": {"symmetricKey": {}, "type": "sas"}}
    strings = []
    with HubCore.open(data_dir) as core:
        core.put_device(ROUND_DEVICE, {"status": "enabled", **sas}, None)
        core.put_module(ROUND_DEVICE, ROUND_MODULE, sas, None)
        single = core.identity_connection_string(ROUND_DEVICE, ROUND_MODULE)
        for i in range(modules):
            device_id = f"fleet-{i // MODULES_PER_DEVICE:03d}"
            module_id = f"module-{i % MODULES_PER_DEVICE:02d}"
            if i % MODULES_PER_DEVICE == 0:
                core.put_device(device_id, {"status": "enabled", **sas}, None)
            core.put_module(device_id, module_id, sas, None)
            strings.append(
                (device_id, module_id, core.identity_connection_string(device_id, module_id))
            )
    return single, strings


STEPS = {
    "patch": "service PATCH call",
    "deliver": "PATCH start -> module handler",
    "report": "handler -> reported PATCH answered (204)",
    "total": "PATCH start -> service GET shows the report",
}


def print_single(title: str, results: dict[str, dict]) -> None:
    print(title + "\n")
    print(f"{'service side':<26} {'step':<44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for side, steps in results.items():
        for key, label in STEPS.items():
            row = steps[key]
            print(
                f"{SIDES[side].label:<26} {label:<44} {row['p50_ms']:>8.2f} "
                f"{row['p99_ms']:>8.2f} {row['max_ms']:>8.2f}"
            )
    print()


def print_table(single: dict, fleet: dict | None, iterations: int) -> None:
    print_single(f"Desired round trip, one module, {iterations} iterations", single)
    if fleet is None:
        return
    print_single(
        f"The same, one module, while {fleet['modules']} more modules are connected",
        fleet["single"],
    )
    print(
        f"Broadcast to {fleet['modules']} connected modules "
        f"({fleet['workers']} worker processes), one PATCH each over 16 connections\n"
    )
    print(
        f"{'wave':>4} {'issue all s':>12} {'first s':>8} {'p50 s':>8} {'all s':>8} "
        f"{'after last PATCH s':>19}"
    )
    for wave in fleet["waves"]:
        print(
            f"{wave['wave']:>4} {wave['issue_all_s']:>12.3f} {wave['first_s']:>8.3f} "
            f"{wave['p50_s']:>8.3f} {wave['all_s']:>8.3f} "
            f"{wave['all_s'] - wave['issue_all_s']:>19.3f}"
        )
    print(
        f"\nconnect {fleet['modules']} clients: {fleet['connect_all_s']:.1f} s; hub RSS "
        f"{fleet['hub_rss_mb_idle']:.0f} MiB idle -> {fleet['hub_rss_mb_connected']:.0f} MiB "
        f"connected, {fleet['hub_threads']} hub threads; workers: "
        f"{fleet['worker_threads']} threads, {fleet['worker_rss_mb']} MiB "
        f"({fleet['threads_per_client']:.1f} threads per SDK client)"
    )


async def run_all(
    hub: LocalHubProcess, single_string: str, strings: list, args: argparse.Namespace
) -> tuple[dict, dict | None]:
    sides = args.service.split(",")
    single = await all_single_round_trips(hub, single_string, args.iterations, sides)
    if not strings:
        return single, None

    def loaded() -> Awaitable[dict]:
        return all_single_round_trips(hub, single_string, args.iterations, sides[:1])

    fleet = await broadcast(hub, strings, args.workers, args.waves, loaded)
    return single, fleet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--modules", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument(
        "--service",
        default="app,sdk",
        help="service sides to time, comma-separated: app (HubService), sdk (SDK defaults)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main())
        return 0

    with tempfile.TemporaryDirectory(prefix="hub-roundtrip-") as tmp:
        data_dir = Path(tmp) / "hub"
        single_string, strings = seed(data_dir, args.modules)
        env = {**os.environ, "TWIN_EXPLORER_HOME": str(Path(tmp) / "home")}
        hub = LocalHubProcess(data_dir, env=env)
        hub.start()
        try:
            single, fleet = asyncio.run(run_all(hub, single_string, strings, args))
        finally:
            hub.stop()

    print_table(single, fleet, args.iterations)
    if args.json:
        args.json.write_text(json.dumps({"single": single, "broadcast": fleet}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
