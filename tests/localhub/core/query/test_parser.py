"""Parser: every construct, the reference's example queries, and error messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.localhub.core.query.strategies import EXPRESSIONS, render_query
from twin_explorer.localhub.core.query import (
    And,
    Compare,
    ComparePaths,
    Count,
    Function,
    In,
    Not,
    Or,
    Projection,
    Query,
    QuerySyntaxError,
    SelectStar,
    parse,
)
from twin_explorer.localhub.core.query.lexer import MAX_QUERY_LENGTH


def where(condition: str):
    return parse(f"SELECT * FROM devices WHERE {condition}").where


# -- the reference's examples (C.8) and the app's own ---------------------------------


def test_select_all_devices():
    assert parse("SELECT * FROM devices") == Query(SelectStar(), "devices")


def test_modules_of_one_device():
    assert parse("SELECT * FROM devices.modules WHERE deviceId = 'd1'") == Query(
        SelectStar(), "devices.modules", Compare(("deviceId",), "=", "d1")
    )


def test_modules_scanning_on_some_devices():
    query = parse(
        "SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning' "
        "AND deviceId IN ['device1','device2']"
    )
    assert query.where == And(
        (
            Compare(("properties", "reported", "status"), "=", "scanning"),
            In(("deviceId",), ("device1", "device2")),
        )
    )


def test_devices_by_tag():
    assert parse("SELECT * FROM devices WHERE tags.site = 'lab'").where == Compare(
        ("tags", "site"), "=", "lab"
    )


def test_docs_examples_parse():
    # From IoT Hub's query-language article.
    assert parse(
        "SELECT * FROM devices WHERE tags.location.region = 'US' "
        "AND properties.reported.telemetryConfig.sendFrequencyInSecs >= 60"
    ).where == And(
        (
            Compare(("tags", "location", "region"), "=", "US"),
            Compare(("properties", "reported", "telemetryConfig", "sendFrequencyInSecs"), ">=", 60),
        )
    )
    assert parse(
        "SELECT * FROM devices WHERE is_defined(properties.reported.connectivity)"
    ).where == Function("IS_DEFINED", (("properties", "reported", "connectivity"),))
    assert parse("SELECT LastActivityTime FROM devices WHERE status = 'enabled'").select == (
        Projection(("LastActivityTime",)),
    )


# -- SELECT and FROM ------------------------------------------------------------------


def test_projections_with_and_without_alias():
    query = parse("SELECT deviceId, properties.reported.temp AS t, tags.[[group]] FROM devices")
    assert query.select == (
        Projection(("deviceId",)),
        Projection(("properties", "reported", "temp"), "t"),
        Projection(("tags", "group")),
    )
    assert [p.key for p in query.select] == ["deviceId", "t", "group"]


def test_count_with_and_without_alias():
    assert parse("SELECT COUNT() AS n FROM devices").select == Count("n")
    assert parse("select count() from devices").select == Count("$1")


def test_top():
    assert parse("SELECT TOP 5 * FROM devices").top == 5
    assert parse("SELECT * FROM devices").top is None


def test_keywords_are_case_insensitive():
    query = parse(
        "sElEcT * FrOm DEVICES.Modules wHeRe NOT a = TRUE aNd b nIn [NULL] oR c In [FALSE]"
    )
    assert query.collection == "devices.modules"
    assert query.where == Or(
        (And((Not(Compare(("a",), "=", True)), In(("b",), (None,), True))), In(("c",), (False,)))
    )


# -- conditions ---------------------------------------------------------------------


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op):
    assert where(f"tags.x {op} 1") == Compare(("tags", "x"), op, 1)


def test_angle_brackets_mean_not_equal():
    assert where("tags.x <> 1") == Compare(("tags", "x"), "!=", 1)


@pytest.mark.parametrize(
    ("text", "op"), [("=", "="), ("!=", "!="), ("<", ">"), ("<=", ">="), (">", "<"), (">=", "<=")]
)
def test_literal_on_the_left_is_flipped(text, op):
    assert where(f"5 {text} tags.x") == Compare(("tags", "x"), op, 5)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("-12", -12),
        ("1.5", 1.5),
        ("- 2.5e3", -2500.0),
        ("1E-2", 0.01),
        ("0x1F", 31),
        ("-0x10", -16),
        ("true", True),
        ("FALSE", False),
        ("null", None),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        (r"'a\'b\"c\\d\/e\n\u00e9\ud83d\ude00'", "a'b\"c\\d/e\né😀"),
        ("''", ""),
        ("99999999999999999999999", 1e23),  # past int64: a double, like any JSON number
    ],
)
def test_literals(text, value):
    parsed = where(f"tags.x = {text}")
    assert parsed.literal == value
    assert type(parsed.literal) is type(value)


def test_in_and_nin_lists():
    assert where("tags.x IN ['a', 1, -2.5, true, null]") == In(
        ("tags", "x"), ("a", 1, -2.5, True, None)
    )
    assert where("tags.x NIN ['a']") == In(("tags", "x"), ("a",), True)
    assert where("tags.x NOT IN ['a']") == In(("tags", "x"), ("a",), True)


def test_functions():
    assert where("IS_DEFINED(tags.a)") == Function("IS_DEFINED", (("tags", "a"),))
    for name in ["IS_NULL", "IS_STRING", "IS_NUMBER", "IS_BOOL", "IS_OBJECT", "IS_ARRAY"]:
        assert where(f"{name.lower()}(tags.a)") == Function(name, (("tags", "a"),))
    for name in ["STARTS_WITH", "ENDS_WITH", "CONTAINS"]:
        assert where(f"{name}(deviceId, 'ab')") == Function(name, (("deviceId",), "ab"))


def test_precedence_not_over_and_over_or():
    a, b, c = (Compare((n,), "=", 1) for n in "abc")
    assert where("a = 1 OR b = 1 AND c = 1") == Or((a, And((b, c))))
    assert where("NOT a = 1 AND b = 1") == And((Not(a), b))
    assert where("(a = 1 OR b = 1) AND c = 1") == And((Or((a, b)), c))
    assert where("NOT (a = 1 OR b = 1)") == Not(Or((a, b)))
    assert where("NOT NOT a = 1") == Not(Not(a))


def test_long_chains_stay_flat():
    expr = where(" AND ".join(f"a{i} = 1" for i in range(600)))
    assert isinstance(expr, And) and len(expr.operands) == 600


def test_path_forms():
    assert where("properties.desired.$metadata.$lastUpdated > '2024'").path == (
        "properties",
        "desired",
        "$metadata",
        "$lastUpdated",
    )
    # After a dot, keywords and leading digits are ordinary names.
    assert where("tags.group.in.2nd = 1").path == ("tags", "group", "in", "2nd")
    assert where("tags.[[my key]].[[a.b]].[[x]] = 1").path == ("tags", "my key", "a.b", "x")
    assert where("[[group]] = 1").path == ("group",)
    assert where("tags.été = 1").path == ("tags", "été")


@given(EXPRESSIONS, st.sampled_from(["devices", "devices.modules"]))
def test_printed_queries_parse_back(expr, collection):
    query = Query(SelectStar(), collection, expr)
    assert parse(render_query(query)) == query


QUERY_PIECES = st.sampled_from(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "devices",
        ".",
        "modules",
        "*",
        ",",
        "(",
        ")",
        "[",
        "]",
        "[[",
        "]]",
        "AND",
        "OR",
        "NOT",
        "IN",
        "NIN",
        "AS",
        "COUNT",
        "TOP",
        "=",
        "<>",
        "<",
        ">=",
        "-",
        "'",
        '"',
        "\\",
        "\\u",
        "0x",
        "1",
        "2.5e",
        "tags",
        "x",
        "true",
        "null",
        "IS_DEFINED",
        "²",
        " ",
        "\n",
    ]
)


@given(st.lists(QUERY_PIECES, max_size=30).map("".join) | st.text(max_size=60))
def test_any_text_parses_or_raises_a_syntax_error(text):
    try:
        parse(text)
    except QuerySyntaxError as err:
        assert 0 <= err.position <= len(text)


# -- errors ---------------------------------------------------------------------------


def error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    return info.value


def test_error_names_the_token_and_column():
    err = error("SELECT deviceId WHER tags.x = 1")
    assert str(err) == "expected FROM after the select list, found 'WHER' at column 17"
    assert err.position == 16 and err.column == 17 and err.line == 1


def test_error_on_a_later_line():
    err = error("SELECT *\nFROM devices\nWHERE tags.x = ")
    assert str(err) == (
        "expected a value (a string, number, true, false or null), "
        "found the end of the query at line 3, column 16"
    )
    assert err.position == len("SELECT *\nFROM devices\nWHERE tags.x = ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected SELECT at the start of the query, found the end of the query at column 1"),
        ("SELECT * FROM devices WHERE", "expected a condition, found the end of the query"),
        (
            "SELECT * FROM devices WHER x = 1",
            "expected WHERE or the end of the query, found 'WHER'",
        ),
        (
            "SELECT * FROM devices WHERE x = 1 y",
            "expected AND, OR or the end of the query, found 'y'",
        ),
        ("SELECT * FROM things", "expected devices or devices.modules after FROM, found 'things'"),
        ("SELECT * FROM devices.jobs", "devices.jobs is not supported by the local hub"),
        ("SELECT * FROM devices.foo", "expected modules after 'devices.', found 'foo'"),
        (
            "SELECT * FROM devices WHERE x 'a'",
            "expected a comparison operator, IN or NIN after 'x'",
        ),
        ("SELECT * FROM devices WHERE x == 1", "expected a value (a string, number, true, false"),
        ("SELECT * FROM devices WHERE x = 'abc", "unterminated string at column 33"),
        ("SELECT * FROM devices WHERE x = 'a\\qb'", "unknown escape '\\q' in string at column 35"),
        ("SELECT * FROM devices WHERE x = '\\ud800'", "unpaired surrogate in \\u escape"),
        ("SELECT * FROM devices WHERE x = '\\u12'", "\\u must be followed by 4 hexadecimal digits"),
        ("SELECT * FROM devices WHERE x = 12ab", "invalid number '12ab' at column 33"),
        ("SELECT * FROM devices WHERE x = 0x", "invalid number '0x'"),
        ("SELECT * FROM devices WHERE x = 1e999", "number '1e999' is out of range"),
        ("SELECT * FROM devices WHERE x = #", "unexpected character '#' at column 33"),
        ("SELECT * FROM devices WHERE x IN []", "the list after IN is empty"),
        (
            "SELECT * FROM devices WHERE x IN ('a')",
            "expected '[' after IN (IoT Hub lists use [..])",
        ),
        ("SELECT * FROM devices WHERE x IN ['a' 'b']", "expected ',' or ']' in the list"),
        ("SELECT * FROM devices WHERE (x = 1", "expected ')' to close the '('"),
        ("SELECT * FROM devices WHERE 1 = 2", "one side of a comparison must be a property"),
        ("SELECT * FROM devices WHERE x = undefined", "comparing with undefined is not supported"),
        (
            "SELECT * FROM devices WHERE x + 1 = 2",
            "arithmetic (+) is not supported by the local hub",
        ),
        (
            "SELECT * FROM devices WHERE x = 1 - 2",
            "arithmetic (-) is not supported by the local hub",
        ),
        ("SELECT * FROM devices WHERE FOO(x)", "unknown function FOO()"),
        ("SELECT * FROM devices WHERE STARTS_WITH(x)", "expected ',' and a string after the path"),
        (
            "SELECT * FROM devices WHERE STARTS_WITH(x, 1)",
            "expected a string as the second argument",
        ),
        ("SELECT * FROM devices WHERE IS_DEFINED('x')", "expected a property path as the first"),
        ("SELECT * FROM devices WHERE tags.", "expected a property name after '.'"),
        ("SELECT * FROM devices WHERE tags.[[a", "unterminated [[ segment: expected ]]"),
        ("SELECT * FROM devices WHERE tags.[[]] = 1", "empty [[]] segment"),
        ("SELECT * FROM devices WHERE group = 1", "found 'group', a keyword (write [[group]] for"),
        ("SELECT * FROM devices GROUP BY status", "GROUP BY is not supported by the local hub"),
        ("SELECT * FROM devices WHERE x = 1 ORDER BY x", "ORDER BY is not supported by the local"),
        ("SELECT * FROM devices JOIN devices.modules", "JOIN is not supported by the local hub"),
        ("SELECT AVG(x) FROM devices", "AVG() is not supported by the local hub"),
        ("SELECT LOWER(x) FROM devices", "functions in the select list (LOWER) are not supported"),
        ("SELECT COUNT(*) FROM devices", "COUNT takes no argument: write COUNT()"),
        ("SELECT x, COUNT() FROM devices", "COUNT() with other select items needs GROUP BY"),
        ("SELECT *, x FROM devices", "SELECT * cannot be combined with other select items"),
        ("SELECT a.x, b.x FROM devices", "two select items are named 'x'; rename one with AS"),
        ("SELECT x AS FROM devices", "expected a name after AS, found 'FROM'"),
        ("SELECT TOP x * FROM devices", "expected a whole number after TOP, found 'x'"),
        ("SELECT FROM devices", "expected '*', COUNT() or a property path in the select list"),
    ],
)
def test_error_messages(text, message):
    assert message in str(error(text))


def test_too_long():
    text = "SELECT * FROM devices WHERE " + " OR ".join(["tags.x = 1"] * 1000)
    err = error(text)
    assert f"the limit is {MAX_QUERY_LENGTH}" in str(err)
    padded = "SELECT * FROM devices" + " " * (MAX_QUERY_LENGTH - len("SELECT * FROM devices"))
    assert parse(padded).collection == "devices"


def test_nesting_limit():
    assert where("(" * 64 + "a = 1" + ")" * 64) == Compare(("a",), "=", 1)
    assert "nested more than 64 levels" in str(
        error("SELECT * FROM devices WHERE " + "NOT " * 65 + "a = 1")
    )


def test_error_is_a_value_error():
    assert isinstance(error("nonsense"), ValueError)


def test_two_properties_compare() -> None:
    where = parse("SELECT * FROM devices WHERE properties.desired.$version >= x.y").where
    assert where == ComparePaths(("properties", "desired", "$version"), ">=", ("x", "y"))
