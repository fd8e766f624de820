"""Hostile bytes on the device port close only the connection that sent them.

Raw TLS sockets send what no SDK would; a real SDK module client stays connected to the
same hub throughout and proves after every case, with a twin GET, that it is still served.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.iot.device import IoTHubModuleClient, ProxyOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.localhub.test_mqtt_server_support import (
    SERVER_LOGS,
    LogWatch,
    RawClient,
    ThreadedHub,
    watch_log,
)
from twin_explorer.localhub.protocols.mqtt.codec import encode, encode_remaining_length
from twin_explorer.localhub.protocols.mqtt.packets import Connect, Publish, Subscribe

RAW_ID = ("robust", "raw")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHub]:
    threaded = ThreadedHub(tmp_path_factory.mktemp("robustness") / "hub")
    yield threaded
    threaded.close()


@pytest.fixture(scope="module")
def log(hub: ThreadedHub) -> Iterator[LogWatch]:
    with watch_log(*SERVER_LOGS) as watch:
        yield watch


@pytest.fixture(scope="module")
def sdk(hub: ThreadedHub) -> Iterator[Any]:
    """The bystander: an unmodified SDK module client on the same hub."""
    connection_string = hub.identity("robust", "sdk")
    port = hub.server.proxy_port
    assert port is not None
    client = IoTHubModuleClient.create_from_connection_string(
        connection_string,
        server_verification_cert=hub.ca_pem,
        proxy_options=ProxyOptions("HTTP", "127.0.0.1", port),
    )
    client.connect()
    yield client
    client.shutdown()


@pytest.fixture(autouse=True)
def bystander_still_served(sdk: Any) -> Iterator[None]:
    yield
    assert sdk.get_twin()["desired"]["$version"] >= 1


def wait_closed(log: LogWatch, client: RawClient) -> None:
    """The hub logged the end of this client's connection (it never outlives the case)."""
    peer = f"127.0.0.1:{client.local_port}"
    log.wait_until(lambda m: peer in m and ("disconnected" in m or " closed: " in m))


def authenticated(hub: ThreadedHub) -> RawClient:
    hub.identity(*RAW_ID)
    client = hub.raw()
    assert client.connect("/".join(RAW_ID), hub.password(*RAW_ID)).return_code == 0
    return client


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_remaining_length(len(body)) + body


BEFORE_CONNECT = {
    "unknown protocol": encode(Connect("x", protocol_name="MQTX")),
    "MQTT 3.1 level": encode(Connect("x", protocol_level=3)),
    "reserved type 0": b"\x00\x00",
    "PUBLISH first": encode(Publish("t", b"x")),
    "CONNECT with the reserved flag": packet(0x10, b"\x00\x04MQTT\x04\x03\x00\x3c\x00\x01x"),
    "five-byte remaining length": b"\x10\xff\xff\xff\xff\x01",
    "oversized remaining length": b"\x10\xff\xff\xff\x7f",
}


@pytest.mark.parametrize("data", BEFORE_CONNECT.values(), ids=BEFORE_CONNECT.keys())
def test_bad_bytes_before_connect(hub: ThreadedHub, log: LogWatch, data: bytes) -> None:
    with hub.raw() as client:
        client.send(data)
        assert client.closed_by_hub()
        wait_closed(log, client)


AFTER_CONNECT = {
    "second CONNECT": encode(Connect("robust/raw")),
    "QoS 2 PUBLISH": encode(Publish("devices/robust/raw/messages/events/", b"x", 2, packet_id=1)),
    "reserved type 15": b"\xf0\x00",
    "SUBSCRIBE with bad flags": b"\x80" + encode(Subscribe(1, (("a", 1),)))[1:],
    "SUBSCRIBE without topics": packet(0x82, b"\x00\x01"),
    "PUBLISH topic with a wildcard": packet(0x30, b"\x00\x03a/#x"),
    "oversized remaining length": b"\x30\xff\xff\xff\x7f",
    "CONNACK from a client": b"\x20\x02\x00\x00",
    "invalid UTF-8 topic": packet(0x30, b"\x00\x02\xc3\x28payload"),
}


@pytest.mark.parametrize("data", AFTER_CONNECT.values(), ids=AFTER_CONNECT.keys())
def test_protocol_violations_after_connect(hub: ThreadedHub, log: LogWatch, data: bytes) -> None:
    with authenticated(hub) as client:
        client.send(data)
        assert client.closed_by_hub()
        wait_closed(log, client)


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_truncated_packets_then_close(hub: ThreadedHub, log: LogWatch, cut: int) -> None:
    connect = encode(Connect("robust/raw", username="u", password=b"p" * 40))
    with hub.raw() as client:
        client.send(connect[:cut])
    wait_closed(log, client)
    with authenticated(hub) as client:
        client.send(encode(Publish("$iothub/twin/GET/?$rid=1", b" ", 1, packet_id=1))[:cut])
    wait_closed(log, client)


@pytest.mark.parametrize("after_connect", [False, True], ids=["before", "after CONNECT"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(garbage=st.binary(min_size=1, max_size=300))
def test_random_bytes(
    hub: ThreadedHub, log: LogWatch, sdk: Any, after_connect: bool, garbage: bytes
) -> None:
    with authenticated(hub) if after_connect else hub.raw() as client:
        client.send(garbage)
    wait_closed(log, client)
    assert sdk.get_twin()["desired"]["$version"] >= 1


def test_the_hub_counts_no_leftover_connections(hub: ThreadedHub, log: LogWatch) -> None:
    # After all of the above only the bystander is connected.
    assert hub.mqtt.connected_clients() == ["robust/sdk"]
    assert hub.mqtt.connection_count == 1
