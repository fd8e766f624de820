"""C2D feedback records: which outcomes the service hears of, by the message's iothub-ack."""

from __future__ import annotations

from tests.localhub.conftest import FakeClock, sas_body
from twin_explorer.localhub.core.c2d import DEFAULT_TTL_NS, MAX_DELIVERY_COUNT
from twin_explorer.localhub.core.hub import HubCore


def _settle(core: HubCore, how: str) -> None:
    message = core.c2d.receive("d1")
    assert message is not None and message.lock_token is not None
    getattr(core.c2d, how)("d1", message.lock_token)


def test_feedback_follows_the_ack_the_service_asked_for(core: HubCore, clock: FakeClock) -> None:
    core.put_device("d1", {"status": "enabled", **sas_body()}, None)
    heard: list[int] = []
    core.feedback.subscribe(lambda: heard.append(len(core.feedback)))
    for mid, ack, how in [
        ("quiet", None, "complete"),
        ("pos-ok", "positive", "complete"),
        ("pos-no", "positive", "reject"),
        ("neg-ok", "negative", "complete"),
        ("neg-no", "negative", "reject"),
        ("full", "full", "reject"),
    ]:
        core.send_c2d("d1", b"x", {"iothub-ack": ack} if ack else {}, message_id=mid)
        _settle(core, how)
    core.send_c2d("d1", b"x", {"iothub-ack": "full"}, message_id="late", ttl_ns=DEFAULT_TTL_NS)
    clock.advance(DEFAULT_TTL_NS / 1e9 + 1)
    core.send_c2d("d1", b"x", {"iothub-ack": "full"}, message_id="bounced")
    for _ in range(MAX_DELIVERY_COUNT):
        _settle(core, "abandon")
    records = core.feedback.take(100)
    assert [(r["originalMessageId"], r["statusCode"]) for r in records] == [
        ("pos-ok", "Success"),
        ("neg-no", "Rejected"),
        ("full", "Rejected"),
        ("late", "Expired"),
        ("bounced", "DeliveryCountExceeded"),
    ]
    device = core.get_device("d1")
    assert {r["deviceGenerationId"] for r in records} == {device["generationId"]}
    assert heard == [1, 2, 3, 4, 5] and len(core.feedback) == 0
