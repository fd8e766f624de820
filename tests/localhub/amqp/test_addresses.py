"""Link addresses in the three spellings clients use (reference 0.6, C.1, D)."""

from __future__ import annotations

import pytest

from twin_explorer.localhub.transports.amqp.addresses import Kind, Node, device_of, parse_address


@pytest.mark.parametrize(
    ("address", "node"),
    [
        ("$cbs", Node(Kind.CBS)),
        ("/devices/d1/modules/m1/twin", Node(Kind.TWIN, "d1", "m1")),
        (
            "amqps://h:5671/devices/d%231/modules/m%2F1/methods/deviceBound",
            Node(Kind.METHODS, "d#1", "m/1"),
        ),
        ("/devices/d1/messages/events", Node(Kind.EVENTS, "d1")),
        ("/devices/d1/messages/devicebound", Node(Kind.DEVICEBOUND, "d1")),
        ("amqps://localhost/messages/devicebound", Node(Kind.SERVICE_C2D)),
        ("/messages/serviceBound/feedback", Node(Kind.FEEDBACK)),
        ("/devices/d1/nothing", Node(Kind.UNKNOWN)),
        ("/devices//twin", Node(Kind.UNKNOWN)),
        (None, Node(Kind.UNKNOWN)),
    ],
)
def test_addresses(address: str | None, node: Node) -> None:
    assert parse_address(address) == node


def test_the_device_a_service_message_is_for() -> None:
    assert device_of("/devices/d1/messages/devicebound") == "d1"
    assert device_of("/devices/d1/twin") is None
    assert device_of(None) is None
