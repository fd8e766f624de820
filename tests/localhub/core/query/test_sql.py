"""to_sql: run the compiled SQL on a real SQLite table and compare with evaluate()."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.localhub.core.query.strategies import documents_and_expression
from twin_explorer.localhub.core.query import Expr, evaluate, parse, to_sql

DEVICE_ID = {("deviceId",): "device_id"}
SPLIT = {("tags",): "tags", ("properties", "reported"): "reported"}
_MISSING = object()


def _json(value: object, ascii_only: bool) -> str | None:
    return None if value is _MISSING else json.dumps(value, ensure_ascii=ascii_only)


@contextmanager
def twins_table(docs: Sequence[dict], *, ascii_only: bool = True) -> Iterator[sqlite3.Connection]:
    """One row per doc: the whole JSON, a deviceId column and split-out sub-documents."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(
            "CREATE TABLE twins (id INTEGER PRIMARY KEY, device_id TEXT, doc TEXT,"
            " tags TEXT, reported TEXT)"
        )
        for index, doc in enumerate(docs):
            reported = doc.get("properties", {}).get("reported", _MISSING)
            db.execute(
                "INSERT INTO twins VALUES (?, ?, ?, ?, ?)",
                (
                    index,
                    doc.get("deviceId"),
                    _json(doc, ascii_only),
                    _json(doc.get("tags", _MISSING), ascii_only),
                    _json(reported, ascii_only),
                ),
            )
        yield db
    finally:
        db.close()


def sql_values(db: sqlite3.Connection, expr: Expr, **mapping) -> list[bool | None]:
    sql, params = to_sql(expr, json_column="doc", **mapping)
    rows = db.execute(f"SELECT ({sql}) FROM twins ORDER BY id", params).fetchall()
    return [None if v is None else bool(v) for (v,) in rows]


def sql_matches(db: sqlite3.Connection, expr: Expr, **mapping) -> list[int]:
    sql, params = to_sql(expr, json_column="doc", **mapping)
    return [i for (i,) in db.execute(f"SELECT id FROM twins WHERE {sql} ORDER BY id", params)]


def condition(text: str) -> Expr:
    where = parse(f"SELECT * FROM devices WHERE {text}").where
    assert where is not None
    return where


MAPPINGS = [
    {},
    {"columns": DEVICE_ID},
    {"json_columns": SPLIT},
    {"columns": DEVICE_ID, "json_columns": SPLIT},
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=documents_and_expression(), mapping=st.sampled_from(MAPPINGS), ascii_only=st.booleans())
def test_sql_agrees_with_evaluate(case, mapping, ascii_only):
    docs, expr = case
    expected = [evaluate(expr, doc) for doc in docs]
    with twins_table(docs, ascii_only=ascii_only) as db:
        assert sql_values(db, expr, **mapping) == expected
        assert sql_matches(db, expr, **mapping) == [i for i, v in enumerate(expected) if v]


# -- specific cases, each run under every mapping ---------------------------------------

DOCS = [
    {"deviceId": "d1", "tags": {"x": True, "site": "lab"}},
    {"deviceId": "d2", "tags": {"x": 1, "site": "Lab"}},
    {"deviceId": "d3", "tags": {"x": "1", "site": None}},
    {"deviceId": "d4", "tags": {"x": {"a": 1}, "site": ["lab"]}},
    {"deviceId": "d5", "tags": {"x": None}},
    {"deviceId": "d6"},
]


@pytest.mark.parametrize("mapping", MAPPINGS, ids=["plain", "column", "split", "both"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.x = true", [0]),
        ("tags.x = 1", [1]),
        ("tags.x = '1'", [2]),
        ("tags.x = null", [4]),
        ("tags.x != 1", []),
        ("NOT tags.x = 1", []),
        ("NOT (tags.x != 1)", [1]),
        ("tags.x IN [true, 1]", [0, 1]),
        ("tags.x NIN ['1']", []),
        ("tags.x NIN ['2']", [2]),
        ("tags.site = 'lab'", [0]),
        ("tags.site != 'lab'", [1]),
        ("IS_DEFINED(tags.x)", [0, 1, 2, 3, 4]),
        ("NOT IS_DEFINED(tags.site)", [4, 5]),
        ("IS_OBJECT(tags.x) OR IS_ARRAY(tags.site)", [3]),
        ("deviceId = 'd2'", [1]),
        ("deviceId IN ['d1', 'd3', 7]", [0, 2]),
        ("deviceId NIN ['d1', 'd3']", [1, 3, 4, 5]),
        ("deviceId > 'd4'", [4, 5]),
        ("deviceId = 2", []),
        ("NOT deviceId = 2", []),
        ("STARTS_WITH(deviceId, 'd')", [0, 1, 2, 3, 4, 5]),
        ("ENDS_WITH(deviceId, '3')", [2]),
        ("NOT CONTAINS(tags.site, 'l')", [1]),
    ],
)
def test_cases(text, expected, mapping):
    assert_both_match(DOCS, text, expected, mapping)


def assert_both_match(docs, text, expected, mapping):
    """Evaluation and SQL both select the ``expected`` indexes of ``docs``."""
    expr = condition(text)
    assert [i for i, doc in enumerate(docs) if evaluate(expr, doc)] == expected
    with twins_table(docs) as db:
        assert sql_matches(db, expr, **mapping) == expected


PAIRS = [
    {"deviceId": "d1", "tags": {"a": 1, "b": 1}},
    {"deviceId": "d2", "tags": {"a": 1, "b": 2.5}},
    {"deviceId": "d3", "tags": {"a": "1", "b": 1}},
    {"deviceId": "d4", "tags": {"a": {"x": 1}, "b": {"x": 1}}},
    {"deviceId": "d5", "tags": {"a": None, "b": None}},
    {"deviceId": "d6", "tags": {"a": True, "b": True, "id": "d6"}},
    {"deviceId": "d7", "tags": {"a": 1}},
]


@pytest.mark.parametrize("mapping", MAPPINGS, ids=["plain", "column", "split", "both"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.a = tags.b", [0, 4, 5]),
        ("tags.a != tags.b", [1]),
        ("tags.a < tags.b", [1]),
        ("NOT tags.a = tags.b", [1]),
        ("tags.a >= tags.b", [0, 4, 5]),
        ("deviceId = tags.id", [5]),
        ("tags.id = deviceId", [5]),
    ],
)
def test_two_properties_compare_only_same_kind_scalars(text, expected, mapping):
    assert_both_match(PAIRS, text, expected, mapping)


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize(
    "key", ['q"uote', "back\\slash", "a.b", "it's", "é", "😀", "$metadata", "a'b\"c.d\\e"]
)
def test_awkward_keys(key, ascii_only):
    docs = [{"tags": {key: {key: "v"}}}, {"tags": {key: "w"}}, {"tags": {"other": "v"}}]
    segment = key if key.isalnum() or key == "$metadata" else f"[[{key}]]"
    nested, flat = condition(f"tags.{segment}.{segment} = 'v'"), condition(f"tags.{segment} = 'w'")
    with twins_table(docs, ascii_only=ascii_only) as db:
        for mapping in MAPPINGS:
            assert sql_matches(db, nested, **mapping) == [0]
            assert sql_matches(db, flat, **mapping) == [1]


def test_path_text_is_quoted_not_injected():
    sql, params = to_sql(condition("tags.[[x') OR 1=1 --]] = 'v'"), json_column="doc")
    assert "OR 1=1 --" in sql and params == ["v"]
    with twins_table([{"tags": {"x') OR 1=1 --": "v"}}, {"tags": {}}]) as db:
        assert sql_matches(db, condition("tags.[[x') OR 1=1 --]] = 'v'")) == [0]


def test_mapped_column_comparisons_are_plain_and_indexable():
    sql, params = to_sql(condition("deviceId = 'd1'"), json_column="doc", columns=DEVICE_ID)
    assert (sql, params) == ("(device_id = ?)", ["d1"])
    sql, params = to_sql(condition("deviceId IN ['a', 'b']"), json_column="doc", columns=DEVICE_ID)
    assert (sql, params) == ("(device_id IN (?, ?))", ["a", "b"])
    with twins_table(DOCS) as db:
        db.execute("CREATE INDEX twins_device ON twins (device_id)")
        plan = db.execute(f"EXPLAIN QUERY PLAN SELECT id FROM twins WHERE {sql}", params)
        assert any("twins_device" in row[-1] for row in plan)


def test_long_or_chain_stays_under_sqlite_depth_limit():
    expr = condition(" OR ".join(f"x = {i}" for i in range(600)))
    with twins_table([{"x": 599}, {"x": 600}]) as db:
        assert sql_matches(db, expr) == [0]


def test_literals_beyond_int64_bind():
    expr = condition("x < 99999999999999999999999 AND x IN [-99999999999999999999999, 5]")
    with twins_table([{"x": 5}, {"x": 2**52}]) as db:
        assert sql_matches(db, expr) == [0]


def test_no_where():
    assert to_sql(None, json_column="doc") == ("1", [])
