"""The minimal merge patch between two versions of a twin section.

The editor uses this to send only what the user changed (DESIGN "Data flow" 1).
Guarantee: ``merge_patch(old, make_patch(old, new)) == new`` whenever ``new`` has no
``null`` object members (a merge patch cannot express "set to null"; nulls inside arrays
are fine, arrays travel whole).
"""

from __future__ import annotations

from twin_explorer.twin.values import copy_json, json_equal


def make_patch(old: dict, new: dict) -> dict:
    """Keys removed from ``old`` map to None, changed objects to a nested patch, the rest whole.

    Arrays are compared and sent whole: a merge patch cannot address array elements.
    The result shares nothing with its inputs.
    """
    patch: dict = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, new_value in new.items():
        if key not in old:
            patch[key] = copy_json(new_value)
            continue
        old_value = old[key]
        if isinstance(new_value, dict) and isinstance(old_value, dict):
            nested = make_patch(old_value, new_value)
            if nested:
                patch[key] = nested
        elif not json_equal(old_value, new_value):
            patch[key] = copy_json(new_value)
    return patch
