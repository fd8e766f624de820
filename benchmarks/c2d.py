"""Cloud-to-device send and feedback latency on the local hub, through the app's own
service side (``twin_explorer.service.c2d.Outbox``: uamqp on its own loop).

    python benchmarks/c2d.py [--messages 200] [--json OUT]

A ``twin-explorer hub`` process; one device connected with the unmodified Python device
SDK over MQTT, which takes (and so completes) each message; the app's outbox sends the
messages one after the other with feedback ``full``. For each message: the time until
the hub took it (send), and until its ``Success`` feedback came back (send → feedback).
Prints a table of p50/p99/max; ``--json`` also writes the numbers. Runs in a temporary
directory. The feedback leg is mostly uamqp's receiver, which polls every 50 ms while no
message is arriving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from azure.iot.device import ProxyOptions  # noqa: E402
from azure.iot.device.aio import IoTHubDeviceClient  # noqa: E402
from roundtrip import percentiles  # noqa: E402

from tests.hubfixtures import HubProcess  # noqa: E402
from twin_explorer.localhub.core.hub import HubCore  # noqa: E402
from twin_explorer.service.c2d.endpoint import C2DEndpoint  # noqa: E402
from twin_explorer.service.c2d.message import Ack, OutgoingMessage  # noqa: E402
from twin_explorer.service.c2d.outbox import Outbox, Sent, State  # noqa: E402

DEVICE = "c2d-bench"
SAS = {"authentication": {"symmetricKey": {}, "type": "sas"}, "status": "enabled"}
TIMEOUT = 30.0


async def run(hub: HubProcess, connection_string: str, count: int) -> dict[str, Any]:
    info = hub.info
    endpoint = C2DEndpoint.from_connection_string(
        info["service_connection_string"], port=info["amqp_port"], ca_cert=info["ca_cert"]
    )
    outbox = Outbox(lambda: endpoint)
    finished: dict[str, asyncio.Future[Sent]] = {}

    def changed(entry: Sent) -> None:
        waiter = finished.get(entry.message_id)
        if waiter is not None and entry.finished and not waiter.done():
            waiter.set_result(entry)

    outbox.changed.subscribe(changed)
    device = IoTHubDeviceClient.create_from_connection_string(
        connection_string,
        server_verification_cert=await asyncio.to_thread(Path(info["ca_cert"]).read_text),
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", info["proxy_port"]),
    )
    received = 0

    def took(_message: Any) -> None:
        nonlocal received
        received += 1

    await device.connect()
    await asyncio.to_thread(setattr, device, "on_message_received", took)
    loop = asyncio.get_running_loop()
    sends: list[float] = []
    feedbacks: list[float] = []
    try:
        for number in range(count + 5):  # the first five warm the connections up
            message = OutgoingMessage(DEVICE, body=f"m{number}", ack=Ack.FULL)
            finished[message.message_id] = loop.create_future()
            start = time.perf_counter()
            entry = await outbox.send(message)
            sent = time.perf_counter()
            if entry.state is State.FAILED:
                raise SystemExit(f"send failed: {entry.text}")
            try:
                async with asyncio.timeout(TIMEOUT):
                    done = await finished[message.message_id]
            except TimeoutError:
                raise SystemExit(
                    f"no feedback in {TIMEOUT} s for message {number} ({received} received; "
                    f"{outbox.entries[0].text}; {outbox.feedback_problem.value})"
                ) from None
            del finished[message.message_id]
            if done.feedback != "Success":
                raise SystemExit(f"feedback {done.feedback}: {done.text}")
            if number >= 5:
                sends.append(sent - start)
                feedbacks.append(time.perf_counter() - start)
    finally:
        await device.shutdown()
        await outbox.aclose()
    return {
        "messages": count,
        "received": received - 5,
        "send": percentiles(sends),
        "send_to_feedback": percentiles(feedbacks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "hub"
        with HubCore.open(data_dir) as core:
            core.put_device(DEVICE, SAS, None)
            connection_string = core.identity_connection_string(DEVICE, None)
        hub = HubProcess(data_dir)
        hub.start()
        try:
            numbers = asyncio.run(run(hub, connection_string, args.messages))
        finally:
            hub.stop()
    print(f"C2D on the local hub, {numbers['messages']} messages, one at a time, ack full")
    print(f"{'':24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, key in (("send (hub took it)", "send"), ("send -> feedback", "send_to_feedback")):
        row = numbers[key]
        print(f"{label:24} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['max_ms']:8.1f}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
