"""IoT Hub query language for the local hub: parse, evaluate, compile to SQLite, page.

Pure Python, no I/O. ``parse`` turns text into an immutable ``Query``; ``matches`` and
``project`` apply it to one twin document.
"""

from __future__ import annotations

from twin_explorer.localhub.query.ast import (
    And,
    Compare,
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
from twin_explorer.localhub.query.errors import QuerySyntaxError
from twin_explorer.localhub.query.evaluate import evaluate, matches, project
from twin_explorer.localhub.query.parser import parse

__all__ = [
    "And",
    "Compare",
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
    "evaluate",
    "matches",
    "parse",
    "project",
]
