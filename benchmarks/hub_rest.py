"""REST throughput and latency of the local hub, run as a real ``twin-explorer hub`` process.

    python benchmarks/hub_rest.py [--requests N] [--connections C] [--registry D] [--json OUT]

Measures module twin GET and PATCH:
* sequentially through the unmodified azure-iot-hub SDK (one call at a time, as an app
  does; includes the SDK's own cost: msrest, a fresh SAS token per request, and with its
  defaults a new TLS connection per call), then through the app's HubService;
* concurrently with an aiohttp client over C keep-alive connections (the hub's capacity).
Then one client's twin GET latency, idle and while another process pages through
1000-twin query pages and full-scan filters on a registry of D devices with 2 modules
each (seeded straight into the data dir first).
Prints a table, and writes the numbers as JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hubfixtures import LocalHubProcess, auth_header  # noqa: E402
from twin_explorer.localhub.core.hub import HubCore  # noqa: E402
from twin_explorer.localhub.runtime.demo import seed_bulk  # noqa: E402

DEVICE, MODULE = "bench-device", "bench-module"
TWIN_PATH = f"/twins/{DEVICE}/modules/{MODULE}?api-version=2021-04-12"
QUERY = "SELECT * FROM devices.modules WHERE properties.reported.status = 'busy'"


def _row(name: str, latencies: list[float], elapsed: float) -> dict:
    ordered = sorted(latencies)
    return {
        "case": name,
        "requests": len(latencies),
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


async def sequential_app(hub: LocalHubProcess, count: int) -> list[dict]:
    """The same calls through the app's HubService (keep-alive, no msrest models)."""
    from twin_explorer.service.hub import HubService

    service = HubService(hub.service_connection_string, ca_cert=hub.ca_cert, use_env_proxies=False)
    rows = []
    try:
        for name, call in (
            ("twin GET, HubService sequential", lambda i: service.get_twin(DEVICE, MODULE)),
            (
                "twin PATCH, HubService sequential",
                lambda i: service.patch_twin(
                    DEVICE, MODULE, {"properties": {"desired": {"n": i}}}, None
                ),
            ),
        ):
            latencies = []
            start = time.perf_counter()
            for i in range(count):
                began = time.perf_counter()
                await call(i)
                latencies.append(time.perf_counter() - began)
            rows.append(_row(name, latencies, time.perf_counter() - start))
    finally:
        await service.aclose()
    return rows


def sequential_sdk(hub: LocalHubProcess, count: int) -> list[dict]:
    rm = hub.registry_manager()
    rows = []
    for name, call in (
        ("twin GET, SDK sequential", lambda i: rm.get_module_twin(DEVICE, MODULE)),
        (
            "twin PATCH, SDK sequential",
            lambda i: rm.update_module_twin(DEVICE, MODULE, {"properties": {"desired": {"n": i}}}),
        ),
    ):
        latencies = []
        start = time.perf_counter()
        for i in range(count):
            began = time.perf_counter()
            call(i)
            latencies.append(time.perf_counter() - began)
        rows.append(_row(name, latencies, time.perf_counter() - start))
    return rows


async def _concurrently(
    connections: int, count: int, request: Callable[[int], Awaitable[None]]
) -> tuple[list[float], float]:
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            began = time.perf_counter()
            await request(i)
            latencies.append(time.perf_counter() - began)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, time.perf_counter() - start


async def concurrent_http(hub: LocalHubProcess, count: int, connections: int) -> list[dict]:
    import aiohttp

    base = f"https://{hub.hostname}:{hub.rest_port}"
    # One token for the run: this measures the hub, not client-side signing.
    headers = {"Authorization": auth_header(hub.service_connection_string)}
    tls = ssl.create_default_context(cafile=hub.ca_cert)
    connector = aiohttp.TCPConnector(ssl=tls, limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def get(i: int) -> None:
            async with session.get(base + TWIN_PATH) as response:
                assert response.status == 200, response.status
                await response.read()

        async def patch(i: int) -> None:
            body = {"properties": {"desired": {"n": i}}}
            async with session.patch(base + TWIN_PATH, json=body) as response:
                assert response.status == 200, response.status
                await response.read()

        rows = []
        for name, request in (
            (f"twin GET, {connections} connections", get),
            (f"twin PATCH, {connections} connections", patch),
        ):
            latencies, elapsed = await _concurrently(connections, count, request)
            rows.append(_row(name, latencies, elapsed))

        # Latency of one client's GETs, idle and while another process pages queries.
        quiet = max(200, count // 5)
        latencies, elapsed = await _concurrently(1, quiet, get)
        rows.append(_row("twin GET, 1 connection", latencies, elapsed))
        context = multiprocessing.get_context("spawn")
        started, stop, pages = context.Event(), context.Event(), context.Value("i", 0)
        pager = context.Process(
            target=_page_queries, args=(base, headers, hub.ca_cert, started, stop, pages)
        )
        pager.start()
        if not await asyncio.to_thread(started.wait, 60):
            raise RuntimeError("the query pager did not start")
        latencies, elapsed = await _concurrently(1, quiet, get)
        stop.set()
        pager.join(30)
        name = f"twin GET, 1 conn., {pages.value} query pages"
        rows.append(_row(name, latencies, elapsed))
        return rows


def _page_queries(base: str, headers: dict, ca_cert: str, started, stop, pages) -> None:
    """In another process: page 1000-twin results and a full-scan filter until told."""
    import requests

    with requests.Session() as session:
        session.headers.update(headers)
        session.verify = ca_cert
        session.trust_env = False
        url = base + "/devices/query?api-version=2021-04-12"
        while not stop.is_set():
            for query, size in (("SELECT * FROM devices", "1000"), (QUERY, "100")):
                response = session.post(
                    url, json={"query": query}, headers={"x-ms-max-item-count": size}
                )
                response.raise_for_status()
                with pages.get_lock():
                    pages.value += 1
                started.set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per case")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--registry", type=int, default=10_000, help="devices to seed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        data_dir = Path(tmp) / "hub"
        with HubCore.open(data_dir) as core:
            seed_bulk(core, args.registry, 2)
            core.put_device(DEVICE, {"deviceId": DEVICE}, None)
            core.put_module(DEVICE, MODULE, {"moduleId": MODULE}, None)
        env = {**os.environ, "TWIN_EXPLORER_HOME": str(Path(tmp) / "home")}
        hub = LocalHubProcess(
            data_dir, extra_args=["--mqtt-port", "off", "--proxy-port", "off"], env=env
        )
        hub.start()
        try:
            rows = sequential_sdk(hub, max(100, args.requests // 4))
            rows += asyncio.run(sequential_app(hub, max(100, args.requests // 4)))
            rows += asyncio.run(concurrent_http(hub, args.requests, args.connections))
        finally:
            hub.stop()

    print(f"Local hub REST, {args.registry} devices x 2 modules in the registry\n")
    print(f"{'case':<42} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row['case']:<42} {row['requests']:>9} {row['req_per_s']:>9.0f} "
            f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
