"""Evaluate a WHERE expression against one service-view twin document (reference C.1).

Semantics (IoT Hub's query engine follows Cosmos DB SQL; C.8: comparisons apply only to
primitive values). Every condition has one of three values: true, false or *undefined*
(``None`` here); a document matches only when its WHERE is true.

* A path that is missing, or runs through a non-object, is undefined.
* ``path op literal`` is undefined unless the value is a primitive of the literal's type
  (string, number, bool, null): objects, arrays and mixed types (``'1'`` vs ``1``,
  ``0`` vs ``false``, ``null`` vs ``0``) never compare. So ``x != 1`` is *not* true when
  ``x`` is missing or a string. Strings order by code point, ``false < true``, and null
  equals only null (``=``, ``<=``, ``>=`` true; ``!=``, ``<``, ``>`` false).
* ``x IN [a, b]`` means ``x = a OR x = b``; ``x NIN [..]`` means ``NOT (x IN [..])``.
* ``NOT`` of undefined is undefined; ``AND``/``OR`` are Kleene logic (false AND undefined
  is false, true OR undefined is true).
* The ``IS_*`` type checks are always true or false (never undefined).
* ``STARTS_WITH``/``ENDS_WITH``/``CONTAINS`` are undefined unless the value is a string.

``sql.to_sql`` compiles to SQL with exactly these semantics.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from twin_explorer.localhub.core.query.ast import (
    And,
    Compare,
    ComparePaths,
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

UNDEFINED: Any = object()  # a missing value, as opposed to JSON null

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TYPE_CHECKS: dict[str, Callable[[str], bool]] = {
    "IS_DEFINED": lambda kind: kind != "undefined",
    "IS_NULL": lambda kind: kind == "null",
    "IS_STRING": lambda kind: kind == "string",
    "IS_NUMBER": lambda kind: kind == "number",
    "IS_BOOL": lambda kind: kind == "bool",
    "IS_OBJECT": lambda kind: kind == "object",
    "IS_ARRAY": lambda kind: kind == "array",
    "IS_PRIMITIVE": lambda kind: kind in ("null", "bool", "number", "string"),
}
_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "STARTS_WITH": str.startswith,
    "ENDS_WITH": str.endswith,
    "CONTAINS": operator.contains,
}


def lookup(doc: Mapping[str, Any], path: Path) -> Any:
    """The value at ``path``, or ``UNDEFINED``."""
    node: Any = doc
    for segment in path:
        if not isinstance(node, dict) or segment not in node:
            return UNDEFINED
        node = node[segment]
    return node


def kind_of(value: Any) -> str:
    """JSON kind: undefined, null, bool, number, string, object or array."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass in Python
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def evaluate(expr: Expr, doc: Mapping[str, Any]) -> bool | None:
    """Three-valued result of ``expr`` on ``doc``: True, False, or None for undefined."""
    match expr:
        case Compare(path, op, literal):
            return _compare(lookup(doc, path), op, literal)
        case ComparePaths(path, op, other):
            right = lookup(doc, other)
            if kind_of(right) in ("undefined", "object", "array"):
                return None
            return _compare(lookup(doc, path), op, right)
        case In(path, values, negate):
            value = lookup(doc, path)
            found = _any3(_compare(value, "=", v) for v in values)
            return _not3(found) if negate else found
        case Function(name, (tuple() as path,)) if name in _TYPE_CHECKS:
            return _TYPE_CHECKS[name](kind_of(lookup(doc, path)))
        case Function(name, (tuple() as path, str() as text)) if name in _STRING_TESTS:
            value = lookup(doc, path)
            return _STRING_TESTS[name](value, text) if kind_of(value) == "string" else None
        case Not(operand):
            return _not3(evaluate(operand, doc))
        case And(operands):
            return _not3(_any3(_not3(evaluate(o, doc)) for o in operands))
        case Or(operands):
            return _any3(evaluate(o, doc) for o in operands)
    raise TypeError(f"not a query expression: {expr!r}")


def matches(expr: Expr | None, doc: Mapping[str, Any]) -> bool:
    """True when ``doc`` satisfies the WHERE ``expr`` (no WHERE matches everything)."""
    return expr is None or evaluate(expr, doc) is True


def project(query: Query, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The result item for ``doc``: the document itself for ``SELECT *``, else an object
    keyed by each projection's alias or last path segment. Undefined values are left out
    (null values stay). The result shares nested objects with ``doc``."""
    if isinstance(query.select, SelectStar):
        return dict(doc)
    if isinstance(query.select, Count):
        raise TypeError("COUNT() is one row for the whole query, not a per-document projection")
    result: dict[str, Any] = {}
    for item in query.select:
        value = lookup(doc, item.path)
        if value is not UNDEFINED:
            result[item.key] = value
    return result


def _compare(value: Any, op: str, literal: Scalar) -> bool | None:
    kind = kind_of(value)
    if kind != kind_of(literal) or kind in ("undefined", "object", "array"):
        return None
    if kind == "null":
        return op in ("=", "<=", ">=")
    return _COMPARE[op](value, literal)


def _not3(value: bool | None) -> bool | None:
    return None if value is None else not value


def _any3(values: Any) -> bool | None:
    """Kleene OR: true if any is true, else undefined if any is undefined, else false."""
    result: bool | None = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result
