"""A client that grants no credit, or floods without reading, stalls nobody else: the hub
holds a bounded backlog for it (then closes it), or the flood runs out of the credit the
hub grants as it goes, while another client's twin requests keep their pace."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from tests.localhub.amqp.raw_client import RECEIVER, SENDER, RawClient, RawLink
from tests.localhub.amqp.support import amqp_hub, identity_token, raw_client
from twin_explorer.localhub.protocols.amqp import Data, Message, Properties, Symbol
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.transports.amqp.connection import MAX_WAITING

__all__ = ["amqp_hub"]  # the fixture
PACE = 1.0  # seconds a twin GET of the well-behaved client may take at most


def twin_get() -> Message:
    return Message(
        message_annotations={Symbol("operation"): "GET"},
        properties=Properties(correlation_id=str(uuid.uuid4())),
        body=[Data(b" ")],
    )


async def twin_client(
    hub: HubServer, device_id: str, *, credit: int
) -> tuple[RawClient, RawLink, RawLink]:
    client = await raw_client(hub)
    assert (await client.put_token(identity_token(hub, device_id)))[0] == 200
    address = f"/devices/{device_id}/twin"
    return (
        client,
        await client.attach(address, SENDER),
        await client.attach(address, RECEIVER, credit=credit),
    )


async def _paced_gets(client: RawClient, sender: RawLink, receiver: RawLink, count: int) -> float:
    """``count`` twin GET round trips; the slowest one's seconds."""
    slowest = 0.0
    for _ in range(count):
        started = time.perf_counter()
        await client.send(sender, twin_get(), settled=True)
        async with asyncio.timeout(PACE * 5):
            _, reply = await receiver.messages.get()
        assert reply.message_annotations[Symbol("status")] == 200
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


async def test_a_client_granting_no_credit_is_closed_at_its_backlog_limit(
    amqp_hub: HubServer,
) -> None:
    stalled, stalled_sender, _ = await twin_client(amqp_hub, "stalled", credit=0)
    good = await twin_client(amqp_hub, "good", credit=100)
    try:

        async def ask_forever() -> None:
            for _ in range(MAX_WAITING + 10):
                await stalled.send(stalled_sender, twin_get(), settled=True)

        asking = asyncio.create_task(ask_forever())
        assert await _paced_gets(*good, count=20) < PACE
        async with asyncio.timeout(30):
            await stalled.closed  # its replies waited for credit; at the limit it goes
        asking.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, ConnectionError):
            await asking
        assert amqp_hub.core.presence.online() == ["good"]
        assert await _paced_gets(*good, count=5) < PACE
    finally:
        await stalled.close()
        await good[0].close()


async def test_a_client_that_floods_without_reading_does_not_slow_another(
    amqp_hub: HubServer,
) -> None:
    # Big twins make big replies: what the flooder does not read piles up at the hub.
    desired = {f"p{i}": "x" * 900 for i in range(30)}
    flooder, flood_sender, _ = await twin_client(amqp_hub, "flood", credit=5000)
    amqp_hub.core.patch_twin("flood", None, {"properties": {"desired": desired}}, None)
    good = await twin_client(amqp_hub, "good", credit=100)
    flooder.read_paused.clear()  # it reads nothing more

    sent = 0

    async def flood() -> None:
        nonlocal sent
        while True:
            await flooder.send(flood_sender, twin_get(), settled=True)
            sent += 1

    flooding = asyncio.create_task(flood())
    try:
        await asyncio.sleep(0.5)  # the flood under test runs a while first
        assert await _paced_gets(*good, count=30) < PACE
        # Its credit ran out (the hub's top-ups wait unread with its replies): it is stalled,
        # still connected, and the hub holds no more for it than that credit allowed.
        before = sent
        await asyncio.sleep(0.5)  # a stall is the absence of progress over time
        assert sent == before and not flooding.done()
        assert not flooder.closed.done()
    finally:
        flooding.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, ConnectionError):
            await flooding
        await flooder.close()
        await good[0].close()
