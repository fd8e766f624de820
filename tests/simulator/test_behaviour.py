"""The answers to desired patches, as pure functions (property-based where it fits)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.twin.strategies import documents, keys, patches, scalars
from twin_explorer.simulator.behaviour import (
    ACK_CHOICES,
    STAMP_KEY,
    Behaviour,
    answer,
    desired_changes,
)
from twin_explorer.twin import merge_patch, validate_section

NOW = "2026-01-01T00:00:00.0000000Z"
versions = st.integers(min_value=1, max_value=2**31 - 1)
flat_patches = st.dictionaries(keys, st.one_of(scalars, st.none()), max_size=4)
# Twin-shaped documents are costly to draw; fewer examples keep the suite quick.
costly = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@costly
@given(documents, patches, versions)
def test_echo_makes_reported_follow_desired(reported, patch, version):
    desired_patch = {**patch, "$version": version}
    reply = answer(Behaviour.ECHO, desired_patch, version=version, received_at=NOW)
    if not patch:
        assert reply is None
        return
    assert "$version" not in reply
    after = merge_patch(reported, reply)
    # Every desired key the patch touched now reads the same in reported.
    expected = merge_patch(reported, patch)
    assert {k: after.get(k) for k in patch} == {k: expected.get(k) for k in patch}
    assert validate_section("reported", reply, patch=True) == validate_section(
        "desired", patch, patch=True
    )


@costly
@given(patches, versions)
def test_acknowledge_answers_every_property_with_the_version(patch, version):
    reply = answer(
        Behaviour.ACKNOWLEDGE, {**patch, "$version": version}, version=version, received_at=NOW
    )
    if not patch:
        assert reply is None
        return
    assert set(reply) == set(patch)
    for key, value in patch.items():
        if value is None:
            assert reply[key] is None
        else:
            assert reply[key] == {
                "value": value,
                "ac": 200,
                "av": version,
                "ad": "Successfully executed patch",
            }


def test_acknowledge_answers_inside_components():
    patch = {"thermostat1": {"__t": "c", "targetTemperature": 21}, "$version": 4}
    reply = answer(Behaviour.ACKNOWLEDGE, patch, version=4, received_at=NOW)
    assert reply == {
        "thermostat1": {
            "__t": "c",
            "targetTemperature": {
                "value": 21,
                "ac": 200,
                "av": 4,
                "ad": "Successfully executed patch",
            },
        }
    }


@given(flat_patches, versions)
def test_stamp_reports_only_the_arrival_time(patch, version):
    assert answer(Behaviour.STAMP, patch, version=version, received_at=NOW) == {STAMP_KEY: NOW}


@given(flat_patches)
def test_manual_never_answers(patch):
    assert answer(Behaviour.MANUAL, patch, version=1, received_at=NOW) is None


def test_bookkeeping_is_not_a_change():
    assert desired_changes({"$version": 3, "$metadata": {"x": 1}, "a": {"b": 1}}) == {"a": {"b": 1}}
    assert answer(Behaviour.ECHO, {"$version": 3}, version=3, received_at=NOW) is None


def test_the_headless_spellings():
    assert ACK_CHOICES == {
        "echo": Behaviour.ECHO,
        "pnp": Behaviour.ACKNOWLEDGE,
        "stamp": Behaviour.STAMP,
        "none": Behaviour.MANUAL,
    }
    assert all(b.label for b in Behaviour)
