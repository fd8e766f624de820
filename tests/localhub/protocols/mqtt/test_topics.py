"""Topic filter validation and matching (MQTT 3.1.1, 4.7)."""

from __future__ import annotations

import pytest

from twin_explorer.localhub.protocols.mqtt.topics import (
    filter_matches,
    is_valid_filter,
    is_valid_topic_name,
)


@pytest.mark.parametrize(
    ("topic_filter", "valid"),
    [
        ("#", True),
        ("+", True),
        ("a/#", True),
        ("a/+/c", True),
        ("+/+", True),
        ("/", True),
        ("$iothub/twin/res/#", True),
        ("devices/d1/modules/m1/inputs/#", True),
        ("", False),
        ("a/#/c", False),
        ("a#", False),
        ("a/b#", False),
        ("a+", False),
        ("a/+b/c", False),
        ("a\x00b", False),
        ("x" * 70_000, False),
    ],
)
def test_filter_validation(topic_filter, valid):
    assert is_valid_filter(topic_filter) is valid


@pytest.mark.parametrize(
    ("topic", "valid"),
    [
        ("a/b", True),
        ("$iothub/twin/GET/?$rid=1", True),
        ("/", True),
        ("", False),
        ("a/+", False),
        ("a/#", False),
        ("a\x00", False),
    ],
)
def test_topic_name_validation(topic, valid):
    assert is_valid_topic_name(topic) is valid


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        # Spec examples (4.7.1.2, 4.7.1.3).
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/tracking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "anything/at/all", True),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
        ("A/b", "a/b", False),
        # $-topics are invisible to filters that start with a wildcard (4.7.2).
        ("#", "$SYS/monitor/Clients", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        # What the SDK subscribes to against what the hub publishes (A.5-A.11).
        ("$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", True),
        ("$iothub/twin/res/#", "$iothub/twin/res/204/?$rid=1&$version=2", True),
        (
            "$iothub/twin/PATCH/properties/desired/#",
            "$iothub/twin/PATCH/properties/desired/?$version=2",
            True,
        ),
        ("$iothub/twin/PATCH/properties/desired/#", "$iothub/twin/res/200/?$rid=1", False),
        ("$iothub/methods/POST/#", "$iothub/methods/POST/my%20method/?$rid=42", True),
        ("devices/d1/modules/m1/inputs/#", "devices/d1/modules/m1/inputs/in1/k=v", True),
        ("devices/d1/modules/m1/inputs/#", "devices/d1/modules/m2/inputs/in1/", False),
        ("devices/d2/messages/devicebound/#", "devices/d2/messages/devicebound/", True),
        ("#", "$iothub/methods/POST/x/?$rid=1", False),
    ],
)
def test_filter_matching(topic_filter, topic, matches):
    assert filter_matches(topic_filter, topic) is matches
