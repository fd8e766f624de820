"""Evaluator: three-valued truth tables over a service-view twin (C.1)."""

from __future__ import annotations

import pytest

from twin_explorer.localhub.core.query import evaluate, matches, parse, project

TWIN = {
    "deviceId": "devA",
    "moduleId": "m1",
    "etag": "AAAAAAAAAAc=",
    "status": "enabled",
    "connectionState": "Disconnected",
    "cloudToDeviceMessageCount": 0,
    "x509Thumbprint": {"primaryThumbprint": None, "secondaryThumbprint": None},
    "version": 2,
    "tags": {"site": "lab", "floor": 3, "ratio": 0.5, "on": True, "off": False, "none": None},
    "properties": {
        "desired": {"$metadata": {"$lastUpdated": "2024-01-01T00:00:00Z"}, "$version": 1},
        "reported": {"temp": 21.5, "list": [1, 2], "obj": {"a": 1}, "$version": 4},
    },
}


def value(condition: str, doc: dict = TWIN) -> bool | None:
    where = parse(f"SELECT * FROM devices WHERE {condition}").where
    assert where is not None
    return evaluate(where, doc)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("deviceId = 'devA'", True),
        ("moduleId = 'm1'", True),
        ("status = 'enabled'", True),
        ("connectionState != 'Connected'", True),
        ("tags.site = 'lab'", True),
        ("tags.site > 'la'", True),
        ("tags.site < 'lb'", True),
        ("tags.floor = 3", True),
        ("tags.floor = 3.0", True),
        ("tags.floor >= 3", True),
        ("tags.floor > 3", False),
        ("tags.ratio < 1", True),
        ("properties.reported.temp > 20", True),
        ("properties.desired.$version = 1", True),
        ("properties.desired.$metadata.$lastUpdated > '2023'", True),
        ("tags.on = true", True),
        ("tags.on != false", True),
    ],
)
def test_comparisons(condition, expected):
    assert value(condition) is expected


@pytest.mark.parametrize(
    "condition",
    [
        # missing paths are undefined, whatever the operator
        "tags.missing = 1",
        "tags.missing != 1",
        "tags.missing = null",
        "tags.site.deeper = 'x'",
        "nothing.at.all < 3",
        # type mismatches never compare
        "tags.site = 1",
        "tags.site != 1",
        "tags.floor = '3'",
        "tags.floor != '3'",
        "tags.on = 1",
        "tags.on != 1",
        "tags.off = 0",
        "tags.floor = true",
        "tags.none = 0",
        "tags.none != 'x'",
        "tags.site = null",
        "tags.site != null",
        # objects and arrays never compare
        "properties.reported.obj = 'x'",
        "properties.reported.obj != 'x'",
        "properties.reported.list = 1",
        "x509Thumbprint != null",
    ],
)
def test_undefined_comparisons(condition):
    assert value(condition) is None
    assert value(f"NOT ({condition})") is None
    assert matches(parse(f"SELECT * FROM devices WHERE NOT ({condition})").where, TWIN) is False


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("tags.none = null", True),
        ("tags.none <= null", True),
        ("tags.none >= null", True),
        ("tags.none != null", False),
        ("tags.none < null", False),
        ("tags.none > null", False),
        ("tags.off < true", True),
        ("tags.on > false", True),
        ("tags.on <= false", False),
    ],
)
def test_null_and_bool_ordering(condition, expected):
    assert value(condition) is expected


@pytest.mark.parametrize(
    ("left", "right", "and_", "or_"),
    [
        ("T", "T", True, True),
        ("T", "F", False, True),
        ("T", "U", None, True),
        ("F", "F", False, False),
        ("F", "U", False, None),
        ("U", "U", None, None),
    ],
)
def test_kleene_and_or(left, right, and_, or_):
    atoms = {"T": "tags.floor = 3", "F": "tags.floor = 4", "U": "tags.floor = 'x'"}
    for a, b in [(left, right), (right, left)]:
        assert value(f"{atoms[a]} AND {atoms[b]}") is and_
        assert value(f"{atoms[a]} OR {atoms[b]}") is or_


def test_not():
    assert value("NOT tags.floor = 3") is False
    assert value("NOT tags.floor = 4") is True
    assert value("NOT tags.floor = 'x'") is None
    assert value("NOT NOT tags.floor = 'x'") is None


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("tags.site IN ['x', 'lab']", True),
        ("tags.site IN ['x', 'y']", False),
        ("tags.site IN ['x', 1]", None),  # 'lab' = 1 is undefined
        ("tags.site IN [1, 'lab']", True),
        ("tags.site NIN ['x', 'y']", True),
        ("tags.site NIN ['lab']", False),
        ("tags.site NIN ['x', 1]", None),
        ("tags.missing IN ['x']", None),
        ("tags.missing NIN ['x']", None),
        ("tags.floor IN [3.0]", True),
        ("tags.on IN [1, true]", True),
        ("tags.on IN [1]", None),
        ("tags.none IN [null]", True),
        ("properties.reported.list IN [1, 2]", None),
        ("properties.reported.obj NIN ['a']", None),
    ],
)
def test_in_and_nin(condition, expected):
    assert value(condition) is expected


@pytest.mark.parametrize(
    ("function", "true_for"),
    [
        ("IS_DEFINED", {"site", "floor", "ratio", "on", "off", "none", "obj", "list"}),
        ("IS_NULL", {"none"}),
        ("IS_STRING", {"site"}),
        ("IS_NUMBER", {"floor", "ratio"}),
        ("IS_BOOL", {"on", "off"}),
        ("IS_OBJECT", {"obj"}),
        ("IS_ARRAY", {"list"}),
        ("IS_PRIMITIVE", {"site", "floor", "ratio", "on", "off", "none"}),
    ],
)
def test_type_functions_are_never_undefined(function, true_for):
    doc = {
        "tags": {**TWIN["tags"], "obj": {}, "list": []},
    }
    for key in ["site", "floor", "ratio", "on", "off", "none", "obj", "list", "missing"]:
        assert value(f"{function}(tags.{key})", doc) is (key in true_for), key


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("STARTS_WITH(deviceId, 'dev')", True),
        ("STARTS_WITH(deviceId, 'A')", False),
        ("STARTS_WITH(deviceId, '')", True),
        ("ENDS_WITH(deviceId, 'vA')", True),
        ("ENDS_WITH(deviceId, 'dev')", False),
        ("CONTAINS(deviceId, 'evA')", True),
        ("CONTAINS(deviceId, 'eva')", False),
        ("STARTS_WITH(tags.floor, '3')", None),
        ("NOT CONTAINS(tags.missing, 'x')", None),
    ],
)
def test_string_functions(condition, expected):
    assert value(condition) is expected


def test_no_where_matches_everything():
    assert matches(None, {})


def test_project_star_returns_the_document():
    assert project(parse("SELECT * FROM devices"), TWIN) == TWIN


def test_project_keys_are_aliases_or_last_segments_and_skip_undefined():
    query = parse(
        "SELECT deviceId, properties.reported.temp AS t, tags.none, tags.missing, "
        "properties.reported.obj FROM devices"
    )
    assert project(query, TWIN) == {"deviceId": "devA", "t": 21.5, "none": None, "obj": {"a": 1}}


def test_project_count_is_an_error():
    with pytest.raises(TypeError):
        project(parse("SELECT COUNT() AS n FROM devices"), TWIN)
