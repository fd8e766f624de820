"""Compile a WHERE expression to an SQLite expression, so the store filters in SQL.

``to_sql`` gives SQL text with ``?`` placeholders and the parameter list. Its semantics
are exactly ``evaluate.evaluate``'s (see that module), including types and undefined:
every compiled condition yields 1 (true), 0 (false) or NULL (undefined), and SQLite's
AND / OR / NOT over NULL are the same Kleene logic. So ``WHERE <sql>`` keeps exactly the
rows where ``matches()`` is true, and ``NOT`` over an undefined value stays undefined
(the row is not returned) in both.

Types: ``json_extract`` returns 1/0 for JSON true/false and SQL NULL for both JSON null
and a missing key, and JSON text for objects, so every value test is guarded by
``json_type`` (``'text'``, ``'integer'``/``'real'``, ``'true'``/``'false'``, ``'null'``,
``'object'``, ``'array'``, or NULL when missing). ``tags.x = true`` therefore never matches
the number 1, and ``tags.x = '{}'`` never matches an object.

Key names: a segment of printable ASCII other than ``"`` and ``\\`` goes into a quoted
JSON path, ``$."tags"."a.b"``, written as an SQL string literal (so store-side expression
indexes can match it). Other keys (quotes, backslashes, control or non-ASCII
characters) are looked up with ``json_each`` and a bound ``key = ?``: before SQLite 3.45
quoted path labels are compared with the key's *escaped* JSON text, which depends on
how the document was serialized, while ``json_each`` decodes keys in every version.

Contract with the caller (the store):

* ``json_column`` holds the document as JSON text (any ``json.dumps`` settings). Paths
  in ``columns`` or under ``json_columns`` may be left out of it.
* ``columns`` maps a path to a TEXT column holding that path's value, which must be a
  string in every document that has it, and NULL where the document lacks it (deviceId,
  moduleId, status, connectionState, etag ...). Comparing such a column with a string
  compiles to a bare ``col = ?`` / ``col IN (?, ?)``, so an index on it is used.
* ``json_columns`` maps a path prefix to a column (or any SQL expression) holding the
  JSON of the sub-document there, NULL when it is missing; the longest matching prefix
  wins. E.g. ``{("tags",): "tags", ("properties", "reported"): "reported"}``, plus
  ``("properties", "reported", "$metadata")`` if ``reported`` is stored without it.
* Cost: a filter parses each JSON column it reads once per row (SQLite caches the
  parse, so json_type and json_extract on the same text share it). Parsing dominates a
  full scan, so small ``json_columns`` beat one big document column.
* ``json_column`` and the column names are pasted into the SQL as given: they come from
  the store, never from query text.
* Strings holding U+0000 are not supported: SQLite's JSON functions cut them there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twin_explorer.localhub.core.query.ast import (
    And,
    Compare,
    ComparePaths,
    Expr,
    Function,
    In,
    Not,
    Or,
    Path,
    Scalar,
)
from twin_explorer.localhub.core.query.evaluate import kind_of

# evaluate.kind_of -> the json_type() names of that kind
_JSON_TYPES = {
    "null": ("null",),
    "bool": ("true", "false"),
    "number": ("integer", "real"),
    "string": ("text",),
    "object": ("object",),
    "array": ("array",),
}
_TYPE_FUNCTIONS = {
    "IS_NULL": ("null",),
    "IS_STRING": ("text",),
    "IS_NUMBER": ("integer", "real"),
    "IS_BOOL": ("true", "false"),
    "IS_OBJECT": ("object",),
    "IS_ARRAY": ("array",),
    "IS_PRIMITIVE": ("null", "true", "false", "integer", "real", "text"),
}


@dataclass(frozen=True, slots=True)
class _Sql:
    text: str
    params: tuple[Any, ...] = ()


def _cat(*parts: str | _Sql) -> _Sql:
    """Concatenate SQL pieces, keeping the parameters in placeholder order."""
    text: list[str] = []
    params: list[Any] = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        else:
            text.append(part.text)
            params.extend(part.params)
    return _Sql("".join(text), tuple(params))


def _bind(value: Scalar) -> Any:
    return int(value) if isinstance(value, bool) else value  # JSON true/false read as 1/0


def _param(value: Scalar) -> _Sql:
    return _Sql("?", (_bind(value),))


def _params(values: Sequence[Scalar]) -> _Sql:
    return _Sql("(" + ", ".join("?" * len(values)) + ")", tuple(map(_bind, values)))


def _in_types(type_sql: _Sql, json_types: Sequence[str]) -> _Sql:
    """1 when ``type_sql`` is one of ``json_types``, else 0 (also when it is NULL)."""
    if len(json_types) == 1:
        return _cat("(", type_sql, f" IS '{json_types[0]}')")
    names = ", ".join(f"'{t}'" for t in json_types)
    return _cat("coalesce(", type_sql, f" IN ({names}), 0)")


@dataclass(frozen=True, slots=True)
class _Access:
    """How to read one path: its JSON type name (NULL when undefined) and its value."""

    type: _Sql
    value: _Sql
    column: str | None = None  # a TEXT column that holds the value

    def has_type(self, json_types: Sequence[str]) -> _Sql:
        """1 when the value's JSON type is one of ``json_types``, else 0 (never NULL)."""
        if self.column is None:
            return _in_types(self.type, json_types)
        return _Sql(f"({self.column} IS NOT NULL)" if "text" in json_types else "0")


def _plain(segment: str) -> bool:
    return all(" " <= ch <= "~" and ch not in '"\\' for ch in segment)


def _json_path(segments: Sequence[str]) -> str:
    path = "$" + "".join(f'."{s}"' for s in segments)
    return "'" + path.replace("'", "''") + "'"


def _kind_sql(json_type: _Sql) -> _Sql:
    """A JSON type name as the kind a comparison needs (NULL for containers)."""
    return _cat(
        "(CASE ",
        json_type,
        " WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'true' THEN 'bool'"
        " WHEN 'false' THEN 'bool' WHEN 'text' THEN 'text' WHEN 'null' THEN 'null' END)",
    )


class _Compiler:
    def __init__(
        self, json_column: str, columns: Mapping[Path, str], json_columns: Mapping[Path, str]
    ) -> None:
        self.json_column = json_column
        self.columns = columns
        self.json_columns = json_columns

    def access(self, path: Path) -> _Access:
        column = self.columns.get(path)
        if column is not None:
            type_sql = _Sql(f"(CASE WHEN {column} IS NOT NULL THEN 'text' END)")
            return _Access(type_sql, _Sql(column), column)
        # Start from the JSON column that holds the longest prefix of the path.
        skip = max((len(p) for p in self.json_columns if path[: len(p)] == p), default=0)
        container = _Sql(self.json_columns[path[:skip]] if skip else self.json_column)
        relative: list[str] = []
        for index in range(skip, len(path)):
            segment = path[index]
            if _plain(segment):
                relative.append(segment)
                continue
            rows = _cat(
                "FROM json_each(",
                container,
                f", {_json_path(relative)}) WHERE key = ",
                _param(segment),
            )
            if index == len(path) - 1:
                return _Access(_cat("(SELECT type ", rows, ")"), _cat("(SELECT value ", rows, ")"))
            # Only an object can be descended into; anything else makes the rest undefined.
            container = _cat("(SELECT CASE WHEN type = 'object' THEN value END ", rows, ")")
            relative = []
        where = _json_path(relative)
        return _Access(
            _cat("json_type(", container, f", {where})"),
            _cat("json_extract(", container, f", {where})"),
        )

    def compile(self, expr: Expr) -> _Sql:
        match expr:
            case Compare():
                return self.compare(expr)
            case ComparePaths():
                return self.compare_paths(expr)
            case In():
                found = self.in_list(expr)
                return _cat("(NOT ", found, ")") if expr.negate else found
            case Function():
                return self.function(expr)
            case Not(operand):
                return _cat("(NOT ", self.compile(operand), ")")
            case And(operands):
                return self.balanced(" AND ", [self.compile(o) for o in operands])
            case Or(operands):
                return self.balanced(" OR ", [self.compile(o) for o in operands])
        raise TypeError(f"not a query expression: {expr!r}")

    def balanced(self, op: str, parts: list[_Sql]) -> _Sql:
        # A balanced tree keeps long AND/OR chains under SQLite's expression depth limit.
        if len(parts) == 1:
            return parts[0]
        middle = len(parts) // 2
        return _cat(
            "(", self.balanced(op, parts[:middle]), op, self.balanced(op, parts[middle:]), ")"
        )

    def compare(self, expr: Compare) -> _Sql:
        access = self.access(expr.path)
        kind = kind_of(expr.literal)
        if access.column is not None:  # the column only ever holds strings
            if kind != "string":
                return _Sql("NULL")
            return _cat(f"({access.column} {expr.op} ", _param(expr.literal), ")")
        if kind == "null":
            truth = "1" if expr.op in ("=", "<=", ">=") else "0"
            return _cat("(CASE WHEN ", access.type, f" = 'null' THEN {truth} END)")
        return _cat(
            "(CASE WHEN ",
            access.has_type(_JSON_TYPES[kind]),
            " THEN ",
            access.value,
            f" {expr.op} ",
            _param(expr.literal),
            " END)",
        )

    def compare_paths(self, expr: ComparePaths) -> _Sql:
        """Defined only when both sides are scalars of one kind (numbers, strings,
        booleans or nulls), as in :func:`evaluate`."""
        left, right = self.access(expr.path), self.access(expr.other)
        left_kind, right_kind = _kind_sql(left.type), _kind_sql(right.type)
        truth = "1" if expr.op in ("=", "<=", ">=") else "0"
        return _cat(
            "(CASE WHEN ",
            left_kind,
            " = ",
            right_kind,
            " THEN (CASE WHEN ",
            left_kind,
            f" = 'null' THEN {truth} ELSE ",
            left.value,
            f" {expr.op} ",
            right.value,
            " END) END)",
        )

    def in_list(self, expr: In) -> _Sql:
        """``x IN [..]`` as the Kleene OR of ``x = v``: true on a same-type match,
        undefined when values of other types are in the list, else false."""
        access = self.access(expr.path)
        groups: dict[str, list[Scalar]] = {}
        for value in expr.values:
            groups.setdefault(kind_of(value), []).append(value)
        mixed = len(groups) > 1

        def body(values: list[Scalar]) -> _Sql:
            found = _cat(access.value, " IN ", _params(values))
            return _cat("CASE WHEN ", found, " THEN 1 END") if mixed else found

        if access.column is not None:
            strings = groups.get("string")
            return _cat("(", body(strings), ")") if strings else _Sql("NULL")
        branches: list[str | _Sql] = []
        for kind, values in groups.items():
            then = _Sql("1") if kind == "null" else body(values)
            for json_type in _JSON_TYPES[kind]:
                branches.extend([f" WHEN '{json_type}' THEN ", then])
        return _cat("(CASE ", access.type, *branches, " END)")

    def function(self, expr: Function) -> _Sql:
        access = self.access(expr.path)
        if expr.name == "IS_DEFINED":
            if access.column is not None:
                return _Sql(f"({access.column} IS NOT NULL)")
            return _cat("(", access.type, " IS NOT NULL)")
        if expr.name in _TYPE_FUNCTIONS:
            return access.has_type(_TYPE_FUNCTIONS[expr.name])
        text = expr.args[1]
        assert isinstance(text, str)
        width = len(text)  # SQLite's substr() and length() count code points, as Python does
        if expr.name == "CONTAINS":
            test = _cat("instr(", access.value, ", ", _param(text), ") > 0")
        elif not text:
            test = _Sql("1")
        elif expr.name == "STARTS_WITH":
            test = _cat("substr(", access.value, f", 1, {width}) = ", _param(text))
        else:  # ENDS_WITH
            test = _cat("substr(", access.value, f", -{width}) = ", _param(text))
        return _cat("(CASE WHEN ", access.has_type(("text",)), " THEN ", test, " END)")


def to_sql(
    expr: Expr | None,
    *,
    json_column: str,
    columns: Mapping[Path, str] | None = None,
    json_columns: Mapping[Path, str] | None = None,
) -> tuple[str, list[Any]]:
    """Compile a WHERE expression to ``(sql, params)`` for SQLite (no WHERE: ``"1"``).

    ``json_column`` holds the whole document; ``columns`` maps paths to TEXT columns (see
    the module docstring); ``json_columns`` maps a path *prefix* to a column holding the
    JSON of the sub-document there (NULL when it is missing), e.g. ``{("tags",): "tags"}``:
    a path under the longest such prefix reads that column, which is much faster to
    parse than the whole twin.
    """
    if expr is None:
        return "1", []
    compiler = _Compiler(json_column, columns or {}, json_columns or {})
    sql = compiler.compile(expr)
    return sql.text, list(sql.params)
