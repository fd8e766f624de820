"""Hypothesis strategies for twin documents and query expressions, and a query printer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from hypothesis import strategies as st

from twin_explorer.localhub.core.query.ast import (
    STRING_FUNCTIONS,
    TYPE_FUNCTIONS,
    And,
    Compare,
    Count,
    Expr,
    Function,
    In,
    Not,
    Or,
    Path,
    Query,
    Scalar,
    SelectStar,
)
from twin_explorer.localhub.core.query.parser import KEYWORDS

# Keys that stress JSON-path quoting: dots, quotes, backslashes, non-ASCII, astral.
AWKWARD_KEYS = ["x.y", 'q"t', "b\\s", "it's", "é", "日本", "😀", "sp ace", "$meta", "[0]a", "-"]
PLAIN_KEYS = ["a", "b", "site", "temp", "status", "n"]
KEYS = st.sampled_from(PLAIN_KEYS + AWKWARD_KEYS)

# Text without lone surrogates (not encodable) or U+0000 (SQLite's JSON cuts strings there).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6)
STRINGS = st.sampled_from(["", "a", "ab", "b", "lab", "A", "é", "1", "true"]) | TEXT
# Integers in IoT Hub's documented range (C.6), where int and float compare exactly.
INTEGERS = st.sampled_from([0, 1, -1, 2, 10]) | st.integers(-(2**52), 2**52 - 1)
FLOATS = st.sampled_from([0.5, 1.0, -0.0, 2.5]) | st.floats(allow_nan=False, allow_infinity=False)
SCALARS: st.SearchStrategy[Scalar] = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, STRINGS)

JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=2) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=4,
)
OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> dict:
    """Service-view-shaped twins (C.1): deviceId is a string when present."""
    doc: dict = {}
    if draw(st.integers(0, 9)):
        doc["deviceId"] = draw(st.sampled_from(["d1", "d2", "dé", 'd"3']) | TEXT)
    doc["tags"] = draw(OBJECTS | st.sampled_from([None, 5, "x", []]))
    if draw(st.booleans()):
        doc["properties"] = {"reported": draw(OBJECTS), "desired": draw(OBJECTS)}
    doc.update(draw(OBJECTS))
    return doc


PATHS: st.SearchStrategy[Path] = st.one_of(
    st.just(("deviceId",)),
    st.tuples(st.just("tags"), KEYS),
    st.tuples(st.just("tags"), KEYS, KEYS),
    st.tuples(st.just("properties"), st.sampled_from(["reported", "desired"]), KEYS),
    st.lists(KEYS | st.just("tags"), min_size=1, max_size=3).map(tuple),
)
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def expressions(paths: st.SearchStrategy, scalars: st.SearchStrategy, strings: st.SearchStrategy):
    """WHERE expressions over the given paths and literals."""
    atoms: st.SearchStrategy[Expr] = st.one_of(
        st.builds(Compare, paths, OPS, scalars),
        st.builds(In, paths, st.lists(scalars, min_size=1, max_size=4).map(tuple), st.booleans()),
        st.builds(lambda n, p: Function(n, (p,)), st.sampled_from(sorted(TYPE_FUNCTIONS)), paths),
        st.builds(
            lambda n, p, s: Function(n, (p, s)),
            st.sampled_from(sorted(STRING_FUNCTIONS)),
            paths,
            strings,
        ),
    )
    return st.recursive(
        atoms,
        lambda children: st.one_of(
            st.builds(Not, children),
            st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        ),
        max_leaves=6,
    )


EXPRESSIONS = expressions(PATHS, SCALARS, STRINGS)


@dataclass(frozen=True)
class _Pick:
    """Placeholder for "a path or value found in the documents", resolved after drawing."""

    index: int


_PICKS = st.integers(0, 999).map(_Pick)
# Three picks to one fresh draw, so most conditions hit something the documents hold.
_PICKING_EXPRESSIONS = expressions(
    st.one_of(_PICKS, _PICKS, _PICKS, PATHS),
    st.one_of(_PICKS, _PICKS, _PICKS, SCALARS),
    st.one_of(_PICKS, _PICKS, _PICKS, STRINGS),
)


def leaves(value: object, path: Path = ()) -> list[tuple[Path, object]]:
    """Every (path, value) reachable through objects, the root excluded."""
    found: list[tuple[Path, object]] = [(path, value)] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(leaves(child, (*path, key)))
    return found


def _resolve(node: object, pools: dict[str, list]) -> object:
    if isinstance(node, Compare):
        return replace(
            node,
            path=_pick(node.path, pools["paths"]),
            literal=_pick(node.literal, pools["values"]),
        )
    if isinstance(node, In):
        values = tuple(_pick(v, pools["values"]) for v in node.values)
        return replace(node, path=_pick(node.path, pools["paths"]), values=values)
    if isinstance(node, Function):
        args = (_pick(node.args[0], pools["paths"]),)
        if len(node.args) == 2:
            args += (_pick(node.args[1], pools["strings"]),)
        return replace(node, args=args)
    if isinstance(node, Not):
        return Not(_resolve(node.operand, pools))  # type: ignore[arg-type]
    assert isinstance(node, And | Or)
    return type(node)(tuple(_resolve(o, pools) for o in node.operands))  # type: ignore[misc]


def _pick(item: object, pool: list) -> object:
    return pool[item.index % len(pool)] if isinstance(item, _Pick) else item


@st.composite
def documents_and_expression(draw: st.DrawFn) -> tuple[list[dict], Expr]:
    """Documents, and an expression that mostly probes paths and values they hold."""
    docs = draw(st.lists(documents(), min_size=1, max_size=6))
    found = [leaf for doc in docs for leaf in leaves(doc)]
    values = [v for _, v in found if not isinstance(v, dict | list)] or ["a"]
    pools = {
        "paths": [p for p, _ in found] or [("tags",)],
        "values": values,
        "strings": [v for v in values if isinstance(v, str)] or ["a"],
    }
    return docs, _resolve(draw(_PICKING_EXPRESSIONS), pools)  # type: ignore[return-value]


# -- printing a Query back to text (for parse round trips) -------------------------------
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")


def render_path(path: Path) -> str:
    parts = []
    for index, segment in enumerate(path):
        plain = _IDENT.match(segment) and not (index == 0 and segment.upper() in KEYWORDS)
        parts.append(segment if plain else f"[[{segment}]]")
    return ".".join(parts)


def render_literal(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    assert math.isfinite(value)
    return repr(value)


def render_expr(expr: Expr) -> str:
    match expr:
        case Compare(path, op, literal):
            return f"{render_path(path)} {op} {render_literal(literal)}"
        case In(path, values, negate):
            items = ", ".join(render_literal(v) for v in values)
            return f"{render_path(path)} {'NIN' if negate else 'IN'} [{items}]"
        case Function(name, args):
            rendered = [render_path(a) if isinstance(a, tuple) else render_literal(a) for a in args]
            return f"{name.lower()}({', '.join(rendered)})"
        case Not(operand):
            return f"NOT ({render_expr(operand)})"
        case And(operands):
            return " AND ".join(f"({render_expr(o)})" for o in operands)
        case Or(operands):
            return " or ".join(f"({render_expr(o)})" for o in operands)
    raise TypeError(expr)


def render_query(query: Query) -> str:
    if isinstance(query.select, SelectStar):
        select = "*"
    elif isinstance(query.select, Count):
        select = f"COUNT() AS {query.select.alias}"
    else:
        select = ", ".join(
            render_path(p.path) + (f" AS {p.alias}" if p.alias else "") for p in query.select
        )
    text = f"SELECT {select} FROM {query.collection}"
    return text + (f" WHERE {render_expr(query.where)}" if query.where is not None else "")
