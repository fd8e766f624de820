"""Helpers for JSON values held as Python objects (dict, list, str, int, float, bool, None)."""

from __future__ import annotations

from typing import Any


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value; much faster than ``copy.deepcopy`` for plain JSON."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _kind(value: Any) -> type:
    # bool is a subclass of int in Python but a different JSON type; int and float are
    # kept apart too, so that 1 -> 1.0 counts as a change (it serialises differently).
    return bool if isinstance(value, bool) else type(value)


def json_equal(a: Any, b: Any) -> bool:
    """Structural equality that, unlike ``==``, tells ``true`` from ``1`` and ``1`` from ``1.0``."""
    if _kind(a) is not _kind(b):
        return False
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        return all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
