"""Cloud-to-device queues: enqueue, lock, complete, abandon, reject, expiry, depth."""

from __future__ import annotations

import pytest

from tests.localhub.conftest import sas_body
from twin_explorer.localhub.core.c2d import MAX_MESSAGE_BYTES, C2DQueues
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError

SECOND = 10**9


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


def test_messages_go_in_order_and_leave_when_completed() -> None:
    queues = C2DQueues(Clock())
    queues.enqueue("d1", b"one", {"k": "v"})
    queues.enqueue("d1", b"two")
    first = queues.receive("d1")
    assert first is not None and first.body == b"one" and first.properties == {"k": "v"}
    assert first.delivery_count == 1 and first.lock_token
    second = queues.receive("d1")
    assert second is not None and second.body == b"two"
    assert queues.receive("d1") is None  # both locked
    queues.complete("d1", first.lock_token)
    assert queues.depth("d1") == 1
    with pytest.raises(HubError) as error:
        queues.complete("d1", first.lock_token)  # settled already
    assert error.value.status == 412


def test_abandon_requeues_first_until_the_delivery_count_runs_out() -> None:
    queues = C2DQueues(Clock(), max_delivery_count=2)
    queues.enqueue("d1", b"a")
    queues.enqueue("d1", b"b")
    taken = queues.receive("d1")
    assert taken is not None
    queues.abandon("d1", taken.lock_token or "")
    again = queues.receive("d1")
    assert again is not None and again.body == b"a" and again.delivery_count == 2
    queues.abandon("d1", again.lock_token or "")  # the second delivery was the last
    assert [m.body for m in queues.dead_letters] == [b"a"]
    last = queues.receive("d1")
    assert last is not None and last.body == b"b"
    queues.reject("d1", last.lock_token or "")
    assert [m.body for m in queues.dead_letters] == [b"a", b"b"]
    assert queues.depth("d1") == 0


def test_expiry_lock_timeout_and_queue_depth() -> None:
    clock = Clock()
    queues = C2DQueues(clock, max_depth=2, lock_ns=10 * SECOND)
    queues.enqueue("d1", b"short", ttl_ns=5 * SECOND)
    queues.enqueue("d1", b"long")
    with pytest.raises(HubError) as error:
        queues.enqueue("d1", b"third")
    assert error.value.status == 403 and error.value.error_code == "DeviceMaximumQueueDepthExceeded"
    clock.now += 6 * SECOND  # "short" expired
    taken = queues.receive("d1")
    assert taken is not None and taken.body == b"long"
    assert [m.body for m in queues.dead_letters] == [b"short"]
    clock.now += 11 * SECOND  # the lock ran out: the message is back
    again = queues.receive("d1")
    assert again is not None and again.body == b"long" and again.delivery_count == 2


def test_deleting_a_device_purges_its_queue(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    core.c2d.enqueue("d1", b"x")
    core.delete_device("d1", None)
    assert core.c2d.depth("d1") == 0


def test_a_lock_token_from_before_a_restart_settles_nothing_after_it() -> None:
    """The queues live in memory: a device that still holds a lock token when the hub
    restarts must get 412, not settle whichever new message drew the same token."""
    before, after = C2DQueues(Clock()), C2DQueues(Clock())
    before.enqueue("d1", b"old")
    stale = before.receive("d1")
    after.enqueue("d1", b"new")
    fresh = after.receive("d1")
    assert stale is not None and fresh is not None
    with pytest.raises(HubError) as error:
        after.complete("d1", stale.lock_token)
    assert error.value.status == 412
    assert after.depth("d1") == 1


def test_the_sweep_expires_messages_nobody_asked_about() -> None:
    """IoT Hub tells a service that its message expired even when the device never
    connects again: the runtime's timer sweeps, without anyone reading the queue."""
    clock = Clock()
    outcomes: list[tuple[bytes, str]] = []
    queues = C2DQueues(clock, on_outcome=lambda m, status: outcomes.append((m.body, status)))
    queues.enqueue("d1", b"short", ttl_ns=5 * SECOND)
    queues.enqueue("d2", b"long", ttl_ns=60 * SECOND)
    queues.expire_due()
    assert outcomes == []
    clock.now += 6 * SECOND
    queues.expire_due()
    assert outcomes == [(b"short", "Expired")]
    clock.now += 60 * SECOND
    queues.expire_due()
    assert outcomes == [(b"short", "Expired"), (b"long", "Expired")]


def test_the_core_flush_expires_messages_with_feedback(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    core.c2d.enqueue("d1", b"x", {"iothub-ack": "full"}, message_id="m1", ttl_ns=0)
    core.flush()
    [record] = core.feedback.take()
    assert (record["originalMessageId"], record["statusCode"]) == ("m1", "Expired")


def test_a_message_over_64_kb_is_refused() -> None:
    queues = C2DQueues(Clock())
    queues.enqueue("d1", b"x" * (MAX_MESSAGE_BYTES - 2), {"k": "v"})  # exactly the limit
    with pytest.raises(HubError) as error:
        queues.enqueue("d1", b"x" * (MAX_MESSAGE_BYTES - 2), {"k": "vv"})
    assert (error.value.status, error.value.error_code) == (413, "MessageTooLarge")
    assert queues.depth("d1") == 1
