"""Telemetry templates: placeholders, types, ranges, properties."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin_explorer.simulator import InvalidSettings, TelemetryTemplate
from twin_explorer.simulator.telemetry import parse_properties

NOW = "2026-01-01T00:00:00.0000000Z"


def _body(template: str, counter: int = 1, seed: int = 0, **props) -> dict:
    message = TelemetryTemplate.parse(template, props or None).render(
        counter, time=NOW, rng=random.Random(seed)
    )
    return json.loads(message.body)


@given(st.integers(min_value=1, max_value=10**9))
def test_a_whole_placeholder_keeps_its_json_type(counter):
    body = _body('{"n": "{{counter}}", "t": "{{ time }}", "text": "#{{counter}}"}', counter)
    assert body == {"n": counter, "t": NOW, "text": f"#{counter}"}


@given(st.integers(-1000, 1000), st.integers(0, 1000), st.integers(0, 2**32))
def test_random_whole_numbers_stay_in_range(low, span, seed):
    value = _body(f'{{"v": "{{{{random:{low}:{low + span}}}}}"}}', seed=seed)["v"]
    assert isinstance(value, int)
    assert low <= value <= low + span


@given(st.integers(0, 2**32))
def test_random_decimals_stay_in_range(seed):
    value = _body('{"v": "{{random:20.5:30}}"}', seed=seed)["v"]
    assert isinstance(value, float)
    assert 20.5 <= value <= 30


def test_placeholders_work_in_nested_values_keys_and_properties():
    template = TelemetryTemplate.parse(
        '{"readings": [{"seq": "{{counter}}"}], "k{{counter}}": true, "plain": 1.5}',
        {"seq": "{{counter}}", "fixed": "x"},
    )
    message = template.render(7, time=NOW, rng=random.Random(0))
    assert json.loads(message.body) == {"readings": [{"seq": 7}], "k7": True, "plain": 1.5}
    assert message.properties == {"seq": "7", "fixed": "x"}


def test_the_same_seed_gives_the_same_message():
    template = TelemetryTemplate.parse('{"v": "{{random:0:1000000}}"}')
    first = template.render(1, time=NOW, rng=random.Random(5))
    assert first == template.render(1, time=NOW, rng=random.Random(5))


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"v": "{{nonsense}}"}',
        '{"v": "{{random:5:1}}"}',
        '{"v": "{{random:5.5:1}}"}',
        '{"v": "{{random:a:b}}"}',
    ],
)
def test_bad_templates_are_refused_when_parsed(text):
    with pytest.raises(InvalidSettings):
        TelemetryTemplate.parse(text)


def test_properties_from_the_command_line():
    assert parse_properties(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InvalidSettings):
        parse_properties(["novalue"])
    with pytest.raises(InvalidSettings):
        TelemetryTemplate.parse("{}", {"": "x"})
