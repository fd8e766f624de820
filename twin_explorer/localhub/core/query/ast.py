"""Immutable syntax tree of an IoT Hub query (reference C.8).

A property path is a tuple of key names: ``tags.location.region`` is
``("tags", "location", "region")``. Literals are the JSON primitives ``str``, ``int``,
``float``, ``bool`` and ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Path: TypeAlias = tuple[str, ...]
Scalar: TypeAlias = str | int | float | bool | None
Collection: TypeAlias = Literal["devices", "devices.modules"]
CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]

#: Functions usable in WHERE. IoT Hub documents only IS_DEFINED for twin queries; the
#: type checks and STARTS_WITH / ENDS_WITH / CONTAINS come from its message-routing
#: query language, and the local hub accepts them in twin queries as a superset.
TYPE_FUNCTIONS = frozenset(
    {
        "IS_DEFINED",
        "IS_NULL",
        "IS_STRING",
        "IS_NUMBER",
        "IS_BOOL",
        "IS_OBJECT",
        "IS_ARRAY",
        "IS_PRIMITIVE",
    }
)
STRING_FUNCTIONS = frozenset({"STARTS_WITH", "ENDS_WITH", "CONTAINS"})


@dataclass(frozen=True, slots=True)
class SelectStar:
    """``SELECT *``: whole twin documents."""


@dataclass(frozen=True, slots=True)
class Projection:
    """One ``SELECT`` item; its output key is ``alias`` or else the last path segment."""

    path: Path
    alias: str | None = None

    @property
    def key(self) -> str:
        return self.alias if self.alias is not None else self.path[-1]


@dataclass(frozen=True, slots=True)
class Count:
    """``SELECT COUNT() AS alias``. Without ``AS`` the alias is ``$1`` (a guess: the
    Cosmos DB naming for unnamed values, which IoT Hub's engine resembles)."""

    alias: str = "$1"


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op literal``. ``<>`` is parsed as ``!=``; ``literal op path`` is flipped."""

    path: Path
    op: CompareOp
    literal: Scalar


@dataclass(frozen=True, slots=True)
class ComparePaths:
    """``path op path``: two properties of one twin; undefined unless both are the same
    kind of scalar (as a comparison with a value of another type)."""

    path: Path
    op: CompareOp
    other: Path


@dataclass(frozen=True, slots=True)
class In:
    """``path IN [..]``, or ``path NIN [..]`` when ``negate``; ``values`` is never empty."""

    path: Path
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Function:
    """A function call: ``args`` is ``(path,)`` for the type checks (``TYPE_FUNCTIONS``)
    and ``(path, "text")`` for ``STRING_FUNCTIONS``. ``name`` is upper case."""

    name: str
    args: tuple[Path | Scalar, ...]

    @property
    def path(self) -> Path:
        path = self.args[0]
        assert isinstance(path, tuple)
        return path


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more operands (chains are kept flat, not nested)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more operands (chains are kept flat, not nested)."""

    operands: tuple[Expr, ...]


Expr: TypeAlias = And | Or | Not | Compare | ComparePaths | In | Function
Select: TypeAlias = SelectStar | tuple[Projection, ...] | Count


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query. ``top`` is ``SELECT TOP n``: return at most n items in all."""

    select: Select
    collection: Collection
    where: Expr | None = None
    top: int | None = None
