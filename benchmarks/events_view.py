"""The Events view under load: the real ``EventStream`` (azure.eventhub.aio on its I/O
thread) and the pane's ``EventsWidget`` on a qasync loop, reading a local hub's
Event Hub-compatible endpoint. The hub runs in a child process, as the app runs its local
hub (``--hub-thread``: in a thread of this process instead, sharing its GIL), and takes
telemetry through its core (the path MQTT and AMQP end in).

    python benchmarks/events_view.py [--latency 200] [--rate 5000] [--seconds 10]
                                     [--hub-thread] [--json OUT]

1. D2C → shown: one telemetry message at a time; the time from handing it to the hub to
   the row inserted in the Events view's model. p50/p99.
2. ``--rate`` events/s for ``--seconds`` into the app (batches every 10 ms): the window
   loop's lag (a 10 ms timer's lateness) p50/p99, events shown and dropped, and the app's
   RSS before, after, after a second run and after Clear (flat memory: the log is
   bounded).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from roundtrip import percentiles, rss_mb  # noqa: E402

from twin_explorer.localhub.core.auth import Identity  # noqa: E402
from twin_explorer.localhub.runtime.server import HubServer  # noqa: E402
from twin_explorer.service.events.consumer import Endpoint  # noqa: E402
from twin_explorer.service.events.stream import EventStream  # noqa: E402

DEVICES = [f"bench-{i}" for i in range(8)]


class HubThread:
    """A local hub on its own loop in a thread; ``send`` queues telemetry onto it."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.ready = threading.Event()
        self.hub: HubServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        self.ready.wait(60)

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with HubServer(self.data, rest_port=0, mqtt_port=0, amqp_port=0, proxy_port=0) as hub:
            self.hub = hub
            for device in DEVICES:
                hub.core.put_device(device, {"status": "enabled", "capabilities": {}}, None)
            self.ready.set()
            await self._stop.wait()

    def endpoint(self) -> Endpoint:
        hub = self.hub
        assert hub is not None
        return Endpoint(
            hub.core.eventhub_connection_string(),
            f"sb://localhost:{hub.amqp_port}",
            str(hub.certificates.ca_cert),
        )

    def send(self, count: int, start: int = 0) -> None:
        def put() -> None:
            hub = self.hub
            assert hub is not None
            for i in range(start, start + count):
                body = json.dumps({"temperature": 20 + i % 10, "n": i}).encode()
                hub.core.devices.telemetry(Identity(DEVICES[i % len(DEVICES)], None), {}, {}, body)
            hub.core.flush()

        assert self.loop is not None
        self.loop.call_soon_threadsafe(put)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


class HubChild:
    """A ``HubThread`` in a child process (what the app does with its local hub), told
    what to send through a pipe."""

    def __init__(self, data: Path) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process running Qt
        self._pipe, theirs = context.Pipe()
        self.process = context.Process(target=_hub_child, args=(data, theirs), daemon=True)
        self.process.start()
        self._endpoint = Endpoint(*self._pipe.recv())

    def endpoint(self) -> Endpoint:
        return self._endpoint

    def send(self, count: int, start: int = 0) -> None:
        self._pipe.send((count, start))

    def stop(self) -> None:
        self._pipe.send(None)
        self.process.join(30)


def _hub_child(data: Path, pipe: Any) -> None:
    hub = HubThread(data)
    endpoint = hub.endpoint()
    pipe.send((endpoint.connection_string, endpoint.address, endpoint.ca_cert))
    while (order := pipe.recv()) is not None:
        hub.send(*order)
    hub.stop()


async def wait_for(condition: Any, within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while True:  # polled: the model's rows announce nothing awaitable
            if condition():
                return
            await asyncio.sleep(0.002)


async def latency(hub: Any, widget: Any, count: int) -> dict[str, float]:
    model = widget.model
    samples: list[float] = []
    for i in range(count):
        rows = model.rowCount()
        sent = time.perf_counter()
        hub.send(1, start=i)
        await wait_for(lambda rows=rows: model.rowCount() > rows)
        samples.append(time.perf_counter() - sent)
    return percentiles(samples)


class GcPauses:
    """The cyclic collector's pauses (any thread's: they hold every thread still)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif info["generation"] == 2:
            self.pauses.append(time.perf_counter() - self._started)


async def flood(hub: Any, stream: EventStream, rate: int, seconds: float) -> dict[str, Any]:
    lags: list[float] = []
    stop = False
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)

    async def ticker() -> None:
        while not stop:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(max(0.0, time.perf_counter() - before - 0.01))

    per_tick = max(1, rate // 100)
    received_before = stream.log.received + stream.log.held
    tick = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        hub.send(per_tick, start=sent)
        sent += per_tick
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    await wait_for(lambda: stream.log.received - received_before >= sent, 60)
    elapsed = time.perf_counter() - started
    stop = True
    await tick
    gc.callbacks.remove(gc_pauses)
    result = percentiles(lags)
    return {
        "sent": sent,
        "shown_per_s": sent / elapsed,
        "loop_lag_p50_ms": result["p50_ms"],
        "loop_lag_p99_ms": result["p99_ms"],
        "loop_lag_max_ms": result["max_ms"],
        "dropped": stream.dropped,
        "kept": stream.log.total,
        "full_gc": len(gc_pauses.pauses),
        "full_gc_max_ms": max(gc_pauses.pauses, default=0.0) * 1000,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from twin_explorer.ui.panes.events import EventsWidget

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub"
        hub: HubThread | HubChild = HubThread(data) if args.hub_thread else HubChild(data)
        stream = EventStream(hub.endpoint)
        widget = EventsWidget(stream)
        widget.resize(1200, 500)
        widget.show()
        try:
            await stream.start()
            hub.send(1)  # the partitions claimed, and everything warm
            await wait_for(lambda: stream.log.total >= 1, 60)
            results: dict[str, Any] = {"d2c_to_shown": await latency(hub, widget, args.latency)}
            results["rss_before_mb"] = rss_mb()
            results["flood"] = await flood(hub, stream, args.rate, args.seconds)
            results["rss_after_mb"] = rss_mb()
            results["flood_again"] = await flood(hub, stream, args.rate, args.seconds)
            results["rss_after_second_mb"] = rss_mb()
            widget.clear()
            gc.collect()
            await asyncio.sleep(0.5)  # the view lets go of its rows on its next turns
            results["rss_after_clear_mb"] = rss_mb()
        finally:
            await stream.aclose()
            widget.close()
            hub.stop()
    return results


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    lat = results["d2c_to_shown"]
    rows = [
        ("D2C → shown in Events, p50", f"{lat['p50_ms']:.1f} ms", f"n={lat['n']}"),
        ("D2C → shown in Events, p99", f"{lat['p99_ms']:.1f} ms", ""),
    ]
    for name in ("flood", "flood_again"):
        f = results[name]
        rows += [
            (
                f"{args.rate}/s for {args.seconds:.0f} s ({name}): loop lag p99",
                f"{f['loop_lag_p99_ms']:.1f} ms",
                f"p50 {f['loop_lag_p50_ms']:.1f}, max {f['loop_lag_max_ms']:.1f}",
            ),
            (
                "  shown/s, kept, dropped",
                f"{f['shown_per_s']:.0f}/s",
                f"kept {f['kept']:,}, dropped {f['dropped']:,}",
            ),
            ("  full collections, longest", f"{f['full_gc']}", f"{f['full_gc_max_ms']:.1f} ms"),
        ]
    rows += [
        (
            "RSS before / after / after 2nd flood / after Clear",
            f"{results['rss_before_mb']:.0f} / {results['rss_after_mb']:.0f} / "
            f"{results['rss_after_second_mb']:.0f} / {results['rss_after_clear_mb']:.0f} MiB",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:>18}  {c}" for a, b, c in rows)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hub-thread", action="store_true", help="the hub in this process")
    parser.add_argument("--json")
    args = parser.parse_args()
    import qasync
    from PySide6.QtWidgets import QApplication

    from twin_explorer.ui.common.ui_thread_gc import collect_on_ui_thread

    app = QApplication([])
    collect_on_ui_thread(app)  # as the app does: cyclic garbage collected on the UI thread
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        results = loop.run_until_complete(main(args))
    print(table(results, args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    run()
