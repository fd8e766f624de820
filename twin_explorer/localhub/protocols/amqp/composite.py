"""Described list composites (performatives, termini, outcomes, message sections).

Each composite is a dataclass whose fields carry a wire kind. Encoding ALWAYS writes every
field, nulls included: azure-eventhub indexes performative fields by position and breaks on
the short lists AMQP allows (reference gotcha 1). Decoding accepts short lists and list0
(rhea sends `end`/`close` as `00 53 17 45`, gotcha 5), filling absent or null fields with
their defaults, and checks each field's type so the engine never sees a wrong one.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from .exceptions import AmqpDecodeError
from .types import (
    _COMPOSITE_DECODERS,
    _COMPOSITE_ENCODERS,
    Array,
    Described,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
    encode_list,
)


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF


def _symbols(v: Any) -> bool:
    if isinstance(v, Symbol):
        return True
    items = v.items if isinstance(v, Array) else v
    return isinstance(items, list | tuple) and all(isinstance(i, Symbol) for i in items)


def _to_symbols(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return Array(0xA3, [Symbol(i) for i in v])
    if isinstance(v, str):
        return Symbol(v)
    return v


def _from_symbols(v: Any) -> Any:
    if isinstance(v, Array):
        return list(v.items)
    return v


# kind -> (check on decode, coerce on encode, normalise after decode)
_KINDS: dict[str, tuple[Callable[[Any], bool], Callable[[Any], Any], Callable[[Any], Any]]] = {
    "any": (lambda v: True, lambda v: v, lambda v: v),
    "bool": (lambda v: isinstance(v, bool), bool, lambda v: v),
    "ubyte": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFF,
              UByte, lambda v: v),
    "ushort": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFF,
               UShort, lambda v: v),
    "uint": (_is_uint, UInt, lambda v: v),
    "ulong": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
              ULong, lambda v: v),
    "str": (lambda v: isinstance(v, str) and not isinstance(v, Symbol), str, lambda v: v),
    "symbol": (lambda v: isinstance(v, Symbol), Symbol, lambda v: v),
    "symbols": (_symbols, _to_symbols, _from_symbols),
    "binary": (lambda v: isinstance(v, bytes), bytes, lambda v: v),
    "map": (lambda v: isinstance(v, dict), lambda v: v, lambda v: v),
    "timestamp": (lambda v: isinstance(v, int) and not isinstance(v, bool), Timestamp,
                  lambda v: v),
    "address": (lambda v: isinstance(v, str), lambda v: v, lambda v: v),
    "id": (lambda v: isinstance(v, str | bytes | uuid.UUID | int) and not isinstance(v, bool),
           lambda v: v, lambda v: v),
    "composite": (lambda v: isinstance(v, Composite | Described), lambda v: v, lambda v: v),
}


class Composite:
    """Base of described-list types.

    A subclass is a dataclass whose fields are the wire fields in order, with `KINDS`
    naming each field's wire kind (a key of `_KINDS`; a trailing "!" marks it mandatory)."""

    DESCRIPTOR: ClassVar[int]
    NAME: ClassVar[str]
    KINDS: ClassVar[str]
    _FIELDS: ClassVar[tuple[tuple[str, str, Any, bool], ...]]

    @classmethod
    def register(cls, klass: type) -> type:
        """Class decorator (after @dataclass): record the field table and the codecs."""
        fields = dataclasses.fields(klass)
        kinds = klass.KINDS.split()
        if len(kinds) != len(fields) or any(k.rstrip("!") not in _KINDS for k in kinds):
            raise TypeError(f"{klass.__name__}.KINDS does not match its fields")
        klass._FIELDS = tuple(
            (f.name, k.rstrip("!"), f.default, k.endswith("!"))
            for f, k in zip(fields, kinds, strict=True)
        )
        _COMPOSITE_ENCODERS[klass] = _encode_composite
        builder = klass.from_fields
        _COMPOSITE_DECODERS[ULong(klass.DESCRIPTOR)] = builder
        _COMPOSITE_DECODERS[Symbol(klass.NAME)] = builder
        return klass

    def to_fields(self) -> list[Any]:
        out = []
        for name, kind, _default, _mandatory in self._FIELDS:
            value = getattr(self, name)
            out.append(None if value is None else _KINDS[kind][1](value))
        return out

    @classmethod
    def from_fields(cls, values: Any) -> Any:
        if not isinstance(values, list):
            raise AmqpDecodeError(f"{cls.NAME} is not a list")
        kwargs = {}
        for index, (name, kind, default, mandatory) in enumerate(cls._FIELDS):
            value = values[index] if index < len(values) else None
            if value is None:
                if mandatory:
                    raise AmqpDecodeError(f"{cls.NAME}: mandatory field {name} is missing")
                value = default
            else:
                check, _coerce, normalise = _KINDS[kind]
                if not check(value):
                    raise AmqpDecodeError(f"{cls.NAME}: field {name} has the wrong type")
                value = normalise(value)
            kwargs[name] = value
        return cls(**kwargs)


def _encode_composite(value: Composite, out: bytearray) -> None:
    out += bytes((0x00, 0x53, value.DESCRIPTOR))
    encode_list(value.to_fields(), out)  # every field, nulls included: never cut short
