"""JSON merge patch (RFC 7386) for twin sections (reference C.3).

A ``null`` member removes the key (a no-op if absent), an object merges into an object
recursively, anything else (arrays, scalars, an object replacing a non-object) replaces.
Written here rather than taken from a library because the twin code also needs
``is_noop`` and JSON-exact equality (``true`` is not ``1``), and it is twenty lines.
"""

from __future__ import annotations

from twin_explorer.twin.values import copy_json, json_equal


def merge_patch(target: dict, patch: dict) -> dict:
    """Apply ``patch`` to ``target`` and return a new dict; neither input is changed or shared."""
    result = copy_json(target)
    _merge_into(result, patch)
    return result


def _merge_into(result: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            if not isinstance(current, dict):
                current = {}
                result[key] = current
            _merge_into(current, value)
        else:
            result[key] = copy_json(value)


def is_noop(target: dict, patch: dict) -> bool:
    """True when applying ``patch`` would leave ``target`` exactly as it is."""
    for key, value in patch.items():
        if value is None:
            if key in target:
                return False
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict) or not is_noop(current, value):
                return False
        elif key not in target or not json_equal(target[key], value):
            return False
    return True


def strip_nulls(doc: dict) -> dict:
    """``doc`` as a stored document: what merging it into ``{}`` gives (null members dropped)."""
    return merge_patch({}, doc)
