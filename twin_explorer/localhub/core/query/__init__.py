"""IoT Hub query language for the local hub: parse, evaluate, compile to SQLite, page.

Pure Python, no I/O. ``parse`` turns text into an immutable ``Query``; ``matches`` and
``project`` apply it to one twin document; ``to_sql`` compiles its WHERE for the store
with the same semantics; ``paging`` handles continuation tokens and page sizes.
"""

from __future__ import annotations

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
    Projection,
    Query,
    Scalar,
    SelectStar,
)
from twin_explorer.localhub.core.query.errors import BadContinuation, BadPageSize, QuerySyntaxError
from twin_explorer.localhub.core.query.evaluate import evaluate, matches, project
from twin_explorer.localhub.core.query.paging import decode_token, encode_token, page_size
from twin_explorer.localhub.core.query.parser import parse
from twin_explorer.localhub.core.query.sql import to_sql

__all__ = [
    "And",
    "BadContinuation",
    "BadPageSize",
    "Compare",
    "ComparePaths",
    "Count",
    "Expr",
    "Function",
    "In",
    "Not",
    "Or",
    "Path",
    "Projection",
    "Query",
    "QuerySyntaxError",
    "Scalar",
    "SelectStar",
    "decode_token",
    "encode_token",
    "evaluate",
    "matches",
    "page_size",
    "parse",
    "project",
    "to_sql",
]
