"""Sessions kept per client id, and the store that hands them to connections."""

from __future__ import annotations

import pytest

from twin_explorer.localhub.protocols.mqtt.errors import LocalProtocolError
from twin_explorer.localhub.protocols.mqtt.packets import Publish
from twin_explorer.localhub.protocols.mqtt.session import MAX_SUBSCRIPTIONS, Session, SessionStore


def test_attach_resumes_only_persistent_sessions():
    store = SessionStore()
    first, present = store.attach("d1", clean_session=False)
    assert not present
    again, present = store.attach("d1", clean_session=False)
    assert (again, present) == (first, True)
    fresh, present = store.attach("d1", clean_session=True)
    assert fresh is not first and not present and fresh.clean
    # A clean session is never resumed, even by a clean-session-0 CONNECT.
    persistent, present = store.attach("d1", clean_session=False)
    assert persistent is not fresh and not present and not persistent.clean
    assert len(store) == 1
    assert store.get("d1") is persistent
    assert list(store) == [persistent]


def test_release_ends_clean_sessions_only():
    store = SessionStore()
    kept, _ = store.attach("kept", False)
    gone, _ = store.attach("gone", True)
    store.release(kept)
    store.release(gone)
    assert "kept" in store and "gone" not in store
    # Releasing a stale clean session does not touch its successor.
    stale, _ = store.attach("x", True)
    current, _ = store.attach("x", True)
    store.release(stale)
    assert store.get("x") is current


def test_discard_unbinds_the_owner():
    store = SessionStore()
    session, _ = store.attach("d1", False)
    session.owner = "connection"
    store.discard("d1")
    store.discard("never-there")
    assert session.owner is None
    assert store.get("d1") is None


def test_subscriptions_grant_at_most_qos1_and_at_most_five_filters():
    session = Session("d1")
    assert session.subscribe("a/#", 2) == 1
    assert session.subscribe("b", 0) == 0
    assert session.subscribe("b/#/c", 1) == 0x80
    for i in range(MAX_SUBSCRIPTIONS - 2):
        assert session.subscribe(f"f{i}", 1) == 1
    assert session.subscribe("one-too-many", 1) == 0x80
    assert session.subscribe("b", 1) == 1  # replacing an existing one is fine
    assert session.subscriptions["b"] == 1
    assert session.unsubscribe("b")
    assert not session.unsubscribe("b")
    assert session.subscribe("now-room", 1) == 1


def test_matching():
    session = Session("d1/m1")
    session.subscribe("$iothub/methods/POST/#", 1)
    session.subscribe("devices/d1/modules/m1/inputs/+/#", 0)
    session.subscribe("devices/d1/modules/m1/inputs/in1/#", 1)
    assert session.matches("$iothub/methods/POST/reboot/?$rid=1")
    assert not session.matches("$iothub/twin/res/200/?$rid=1")
    assert session.granted_qos("devices/d1/modules/m1/inputs/in1/k=v") == 1
    assert session.granted_qos("devices/d1/modules/m1/inputs/in2/") == 0
    assert session.granted_qos("elsewhere") is None


def test_packet_ids_skip_those_in_flight_and_wrap():
    session = Session("d1")
    ids = []
    for _ in range(3):
        packet_id = session.allocate_packet_id()
        session.track_outbound(Publish("t", b"", 1, packet_id=packet_id))
        ids.append(packet_id)
    assert ids == [1, 2, 3]
    session.complete_outbound(2)
    session._next_packet_id = 0xFFFF
    assert session.allocate_packet_id() == 0xFFFF
    assert session.allocate_packet_id() == 2  # wrapped, skipping 1 (still in flight)
    assert [p.packet_id for p in session.in_flight] == [1, 3]


def test_packet_ids_run_out_loudly():
    session = Session("d1")
    for packet_id in range(1, 0x10000):
        session.track_outbound(Publish("t", b"", 1, packet_id=packet_id))
    with pytest.raises(LocalProtocolError):
        session.allocate_packet_id()
