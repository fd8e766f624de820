"""``$metadata`` trees for desired and reported properties (reference C.2).

Every object level (the section root included) and every leaf has a node with
``$lastUpdated``; desired nodes also carry ``$lastUpdatedVersion``. Arrays are leaves.
When a key is removed its node goes too, and the timestamps of its parents move: that
is how the metadata records a deletion.
"""

from __future__ import annotations

from typing import Any

from twin_explorer.twin.values import copy_json

LAST_UPDATED = "$lastUpdated"
LAST_UPDATED_VERSION = "$lastUpdatedVersion"


def _stamp(node: dict, now: str, version: int | None) -> None:
    node[LAST_UPDATED] = now
    if version is not None:
        node[LAST_UPDATED_VERSION] = version


def fresh_metadata(value: Any, now: str, version: int | None) -> dict:
    """A metadata node for a newly written ``value``, stamped throughout."""
    node: dict = {}
    _stamp(node, now, version)
    if isinstance(value, dict):
        for key, child in value.items():
            node[key] = fresh_metadata(child, now, version)
    return node


def patched_metadata(metadata: dict, doc: dict, patch: dict, now: str, version: int | None) -> dict:
    """The metadata after ``patch`` is merged into ``doc`` (the section before the merge).

    Every node the patch names is stamped, and so are its ancestors; nodes of removed keys
    are dropped. Returns a new tree; ``metadata`` is not changed.
    """
    result = copy_json(metadata)
    _patch_node(result, doc, patch, now, version)
    return result


def _patch_node(node: dict, doc: dict, patch: dict, now: str, version: int | None) -> None:
    _stamp(node, now, version)
    for key, value in patch.items():
        current = doc.get(key)
        if value is None:
            node.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            _patch_node(child, current, value, now, version)
        else:
            # A new key, or an object replacing a non-object: the merge writes the patch
            # value with its nulls dropped, so describe exactly that.
            node[key] = fresh_metadata(_without_nulls(value), now, version)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value
