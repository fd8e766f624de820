"""The local hub's Event Hub-compatible endpoint under load, against a ``twin-explorer hub``
process.

    python benchmarks/eventhub.py [--senders 100] [--messages 50] [--read 20000]

1. Ingest: ``--senders`` AMQP device connections (``tests/localhub/amqp/raw_client.py``)
   each send ``--messages`` telemetry messages, pipelined, each accepted once the event
   log wrote it; once with no consumer and once while 2 unmodified ``azure-eventhub``
   async consumers (``$Default`` and a second consumer group) follow the stream live.
   Messages/s for each, and when the consumers had everything.
2. Read: one ``azure-eventhub`` consumer reads one partition from the start (``--read``
   events, prefetch 300): events/s from the hub, and the same client against nothing but
   a drain: a bare server over the hub's own AMQP engine that answers CBS and replays one
   pre-encoded event for every credit. The gap is the hub's cost per event.

Prints a table. Runs in a temporary directory. The client side runs in this process, so
on a small machine both sides share the CPUs: compare rows of one run, not machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from amqp import Hub  # noqa: E402  (a hub process on OS-chosen ports)
from azure.eventhub import TransportType  # noqa: E402
from azure.eventhub.aio import EventHubConsumerClient  # noqa: E402

from tests.localhub.amqp.raw_client import SENDER, RawClient, data_message  # noqa: E402
from twin_explorer.connection.sas import device_resource_uri, generate_device_token  # noqa: E402
from twin_explorer.localhub.core.eventhub import endpoint_event  # noqa: E402
from twin_explorer.localhub.core.hub import HubCore  # noqa: E402
from twin_explorer.localhub.protocols.amqp import (  # noqa: E402
    Accepted,
    ConnectionClosed,
    CreditChanged,
    Data,
    Int,
    LinkAttachRequested,
    Message,
    MessageReceived,
    Properties,
    SaslInitReceived,
    ServerConnection,
    Timestamp,
    Value,
    encode_message,
)
from twin_explorer.localhub.runtime.tls import CertPaths, server_context  # noqa: E402
from twin_explorer.localhub.store.event_log import LoggedEvent, partition_of  # noqa: E402
from twin_explorer.localhub.transports.amqp.eventhub import event_message  # noqa: E402

SAS = {"authentication": {"symmetricKey": {}, "type": "sas"}}
BODY = json.dumps({"temperature": 21.5, "humidity": 40}).encode()
TIMEOUT = 300.0
READER = "reader"  # the device whose partition the read benchmark reads


def seed(data_dir: Path, senders: int) -> dict[str, Any]:
    keys = []
    with HubCore.open(data_dir) as core:
        for i in range(senders):
            device_id = f"sender-{i:03d}"
            core.put_device(device_id, {"status": "enabled", **SAS}, None)
            keys.append((device_id, core.get_device(device_id)["authentication"]["symmetricKey"]))
        core.put_device(READER, {"status": "enabled", **SAS}, None)
        reader_key = core.get_device(READER)["authentication"]["symmetricKey"]["primaryKey"]
        core.eventhub.add_consumer_group("second")
        return {
            "senders": [(d, k["primaryKey"]) for d, k in keys],
            "reader": reader_key,
            "eventhub": core.eventhub_connection_string(),
        }


def consumer(connection_string: str, port: int, ca: str, group: str) -> EventHubConsumerClient:
    return EventHubConsumerClient.from_connection_string(
        connection_string,
        consumer_group=group,
        custom_endpoint_address=f"sb://localhost:{port}",
        transport_type=TransportType.Amqp,
        connection_verify=ca,
    )


async def send_all(hub: Hub, device: str, key: str, count: int, tag: str) -> int:
    client = await RawClient.connect(hub.info["amqp_port"], hub.tls)
    token = generate_device_token(device_resource_uri("localhost", device), key)
    assert (await client.put_token(token))[0] == 200
    link = await client.attach(f"/devices/{device}/messages/events", SENDER)
    outcomes = await asyncio.gather(
        *(client.send(link, data_message(BODY, message_id=f"{tag}-{i}")) for i in range(count))
    )
    await client.close()
    return sum(isinstance(o, Accepted) for o in outcomes)


async def ingest(hub: Hub, strings: dict, count: int, tag: str) -> dict[str, float]:
    started = time.perf_counter()
    accepted = await asyncio.gather(
        *(send_all(hub, d, k, count, tag) for d, k in strings["senders"])
    )
    elapsed = time.perf_counter() - started
    total = len(strings["senders"]) * count
    assert sum(accepted) == total, f"{sum(accepted)} of {total} accepted"
    return {"messages": total, "seconds": elapsed, "per_s": total / elapsed}


async def follow(client: EventHubConsumerClient, tag: str, wanted: int, ready: Any) -> float:
    """Receive live until ``wanted`` messages tagged ``tag`` came; when the last did."""
    seen = 0
    done = asyncio.Event()

    async def on_event(context: Any, event: Any) -> None:
        nonlocal seen
        if str(event.message_id or "").startswith(tag + "-"):
            seen += 1
            if seen == wanted:
                done.set()

    async def on_init(context: Any) -> None:
        ready()

    async with client:
        task = asyncio.create_task(
            client.receive(on_event, starting_position="@latest", on_partition_initialize=on_init)
        )
        try:
            async with asyncio.timeout(TIMEOUT):
                await done.wait()
            return time.perf_counter()
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def ingest_with_consumers(hub: Hub, strings: dict, count: int) -> dict[str, float]:
    port, ca = hub.info["amqp_port"], hub.info["ca_cert"]
    total = len(strings["senders"]) * count
    initialised = 0
    all_ready = asyncio.Event()

    def ready() -> None:
        nonlocal initialised
        initialised += 1
        if initialised == 8:  # 4 partitions x 2 consumers
            all_ready.set()

    followers = [
        asyncio.create_task(follow(consumer(strings["eventhub"], port, ca, g), "c", total, ready))
        for g in ("$Default", "second")
    ]
    async with asyncio.timeout(TIMEOUT):
        await all_ready.wait()
    await asyncio.sleep(1.0)  # the receivers attach after on_partition_initialize
    started = time.perf_counter()
    result = await ingest(hub, strings, count, "c")
    finished = await asyncio.gather(*followers)
    result["consumers_done_s"] = max(finished) - started
    return result


# --- 2. read throughput: the hub vs a drain -----------------------------------------------


async def read_partition(connection_string: str, port: int, ca: str, count: int) -> float:
    """Events/s one consumer reads from the start of the reader's partition."""
    client = consumer(connection_string, port, ca, "$Default")
    seen = 0
    done = asyncio.Event()
    started = 0.0

    async def on_event(context: Any, event: Any) -> None:
        nonlocal seen, started
        if seen == 0:
            started = time.perf_counter()
        seen += 1
        if seen == count:
            done.set()

    async with client:
        task = asyncio.create_task(
            client.receive(
                on_event,
                partition_id=str(partition_of(READER)),
                starting_position="-1",
                prefetch=300,
            )
        )
        try:
            async with asyncio.timeout(TIMEOUT):
                await done.wait()
            return (count - 1) / (time.perf_counter() - started)
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class Drain:
    """A bare AMQP server: SASL and CBS say yes, a receiver gets one pre-encoded event
    per credit. What the client reads at its own pace."""

    def __init__(self, certs: CertPaths) -> None:
        self.context = server_context(certs)
        event = LoggedEvent(0, 0, 0, time.time_ns(), "telemetry", READER, None, 1, {}, {}, BODY)
        self.event = encode_message(event_message(endpoint_event(event)))

    @staticmethod
    def reply(request: Message) -> Message:
        """200 to a put-token; for a $management READ, the entity's properties."""
        kind = str((request.application_properties or {}).get("type", ""))
        body: Any = [Data(b"")]
        if kind == "com.microsoft:eventhub":
            ids = ["0", "1", "2", "3"]
            body = Value({"name": "localhost", "created_at": Timestamp(0), "partition_ids": ids})
        elif kind == "com.microsoft:partition":
            body = Value(
                {"name": "localhost", "partition": "0", "begin_sequence_number": 0,
                 "last_enqueued_sequence_number": 0, "last_enqueued_offset": "0",
                 "last_enqueued_time_utc": Timestamp(0), "is_partition_empty": False}
            )  # fmt: skip
        assert request.properties is not None
        return Message(
            properties=Properties(correlation_id=request.properties.message_id),
            application_properties={"status-code": Int(200), "status-description": "OK"},
            body=body,
        )

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, ssl=self.context)
        return self.server.sockets[0].getsockname()[1]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConnection("drain")
        receivers: list[Any] = []
        replies: list[Any] = []  # the client's $cbs and $management receivers
        while not conn.closed:
            data = await reader.read(65536)
            for event in conn.receive_data(data):
                match event:
                    case SaslInitReceived():
                        conn.sasl_outcome(True)
                    case LinkAttachRequested(link=link):
                        conn.accept_link(link, properties=link.properties or None)
                        if link.role == "sender":
                            conn.grant_credit(link, 1000)
                        elif "/consumergroups/" in str(link.address).lower():
                            receivers.append(link)
                        else:
                            replies.append(link)
                    case MessageReceived(link=link, message=message):
                        conn.settle(link, event.delivery_id, Accepted())
                        back = next(r for r in replies if r.address == link.address)
                        conn.send(back, self.reply(message), settled=True)
                    case CreditChanged(link=link) if link in receivers:
                        while link.credit > 0:
                            conn.send(link, self.event, settled=True)
                    case ConnectionClosed():
                        break
            writer.write(conn.data_to_send())
            await writer.drain()
            if not data:
                break
        writer.close()


async def run(hub: Hub, strings: dict, args: argparse.Namespace) -> dict:
    results: dict[str, Any] = {}
    results["ingest"] = await ingest(hub, strings, args.messages, "a")
    results["ingest_2_consumers"] = await ingest_with_consumers(hub, strings, args.messages)
    # Fill the reader's partition, then read it back.
    key = strings["reader"]
    for start in range(0, args.read, 5000):
        await send_all(hub, READER, key, min(5000, args.read - start), f"r{start}")
    port, ca = hub.info["amqp_port"], hub.info["ca_cert"]
    results["read_hub_per_s"] = await read_partition(strings["eventhub"], port, ca, args.read)
    drain = Drain(CertPaths.in_dir(Path(hub.info["data_dir"]) / "tls"))
    drain_port = await drain.start()
    results["read_drain_per_s"] = await read_partition(
        strings["eventhub"], drain_port, ca, args.read
    )
    drain.server.close()
    return results


def print_table(results: dict, args: argparse.Namespace) -> None:
    plain, busy = results["ingest"], results["ingest_2_consumers"]
    rows = [
        (f"ingest, {args.senders} AMQP senders, no consumer", f"{plain['per_s']:,.0f} msg/s",
         f"{plain['messages']} in {plain['seconds']:.2f} s"),
        (f"ingest, {args.senders} senders + 2 live consumers", f"{busy['per_s']:,.0f} msg/s",
         f"{busy['messages']} in {busy['seconds']:.2f} s; both consumers had all "
         f"after {busy['consumers_done_s']:.2f} s"),
        ("read one partition from the start (hub)", f"{results['read_hub_per_s']:,.0f} ev/s",
         f"{args.read} events, azure-eventhub aio, prefetch 300"),
        ("same client against a drain server", f"{results['read_drain_per_s']:,.0f} ev/s",
         "one pre-encoded event per credit: the client's own limit"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'rate':>14}  notes")
    for name, rate, note in rows:
        print(f"{name:<{width}}  {rate:>14}  {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--messages", type=int, default=50, help="per sender and phase")
    parser.add_argument("--read", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-eventhub-") as tmp:
        data_dir = Path(tmp) / "hub"
        strings = seed(data_dir, args.senders)
        env = {**os.environ, "TWIN_EXPLORER_HOME": str(Path(tmp) / "home")}
        hub = Hub(data_dir, env)
        try:
            results = asyncio.run(run(hub, strings, args))
        finally:
            hub.stop()
    print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
