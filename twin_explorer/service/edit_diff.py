"""Line diffs of two JSON documents, for the diff and conflict views.

Both sides are laid out canonically (sorted keys, two-space indent), so a diff shows
changes of content, never of key order or spacing. ``side_by_side`` aligns the two sides
row by row (a missing line is ``None``), ready for two synchronised text panes.
"""

from __future__ import annotations

import bisect
import difflib
import json
from collections import Counter
from enum import StrEnum
from typing import Any, NamedTuple

from twin_explorer.service.edit_text import canonical


class Change(StrEnum):
    EQUAL = "equal"
    CHANGED = "changed"  # the line differs on the two sides
    REMOVED = "removed"  # only on the left
    ADDED = "added"  # only on the right


class DiffRow(NamedTuple):
    """One row of a side-by-side diff (a tuple: a twin at the limits has thousands)."""

    left: str | None
    right: str | None
    change: Change
    left_line: int | None = None  # 1-based line numbers in each side's text
    right_line: int | None = None


def side_by_side(left: str | list[str], right: str | list[str]) -> list[DiffRow]:
    """Rows pairing the lines of ``left`` and ``right`` (texts or lists of lines); unequal
    runs are padded with None."""
    a = left.splitlines() if isinstance(left, str) else left
    b = right.splitlines() if isinstance(right, str) else right
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in opcodes(a, b):
        if tag == "equal":  # most rows: made in bulk
            size = i2 - i1
            rows.extend(
                map(
                    DiffRow._make,
                    zip(
                        a[i1:i2],
                        b[j1:j2],
                        [Change.EQUAL] * size,
                        range(i1 + 1, i2 + 1),
                        range(j1 + 1, j2 + 1),
                        strict=True,
                    ),
                )
            )
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            has_left, has_right = i < i2, j < j2
            if has_left and has_right:
                change = Change.CHANGED
            else:
                change = Change.REMOVED if has_left else Change.ADDED
            rows.append(
                DiffRow(
                    a[i] if has_left else None,
                    b[j] if has_right else None,
                    change,
                    i + 1 if has_left else None,
                    j + 1 if has_right else None,
                )
            )
    return rows


Opcode = tuple[str, int, int, int, int]
# Stretches this small (lines left x lines right) go straight to SequenceMatcher.
SMALL_GAP = 400


def opcodes(a: list[str], b: list[str]) -> list[Opcode]:
    """``difflib``-style opcodes turning ``a`` into ``b``, by patience diff.

    Canonical JSON repeats lines like ``},`` thousands of times, which makes
    ``SequenceMatcher`` slow (half a second on a twin at the size limits) and, with its
    junk heuristic, sloppy. Lines that occur once on each side (mostly keys) are anchors:
    the longest run of anchors in the same order splits the problem, and only the small
    stretches between anchors go to ``SequenceMatcher``.
    """
    ops: list[Opcode] = []
    _patience(a, b, 0, len(a), 0, len(b), ops)
    return _merged(ops)


def _patience(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int, ops) -> None:
    start_a, start_b = alo, blo
    while alo < ahi and blo < bhi and a[alo] == b[blo]:
        alo, blo = alo + 1, blo + 1
    if alo > start_a:
        ops.append(("equal", start_a, alo, start_b, blo))
    tail = 0
    while alo < ahi - tail and blo < bhi - tail and a[ahi - 1 - tail] == b[bhi - 1 - tail]:
        tail += 1
    mid_a, mid_b = ahi - tail, bhi - tail
    _middle(a, b, alo, mid_a, blo, mid_b, ops)
    if tail:
        ops.append(("equal", mid_a, ahi, mid_b, bhi))


def _middle(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int, ops) -> None:
    if alo == ahi or blo == bhi:
        if alo < ahi or blo < bhi:
            ops.append(("delete" if blo == bhi else "insert", alo, ahi, blo, bhi))
        return
    small = (ahi - alo) * (bhi - blo) <= SMALL_GAP
    anchors = [] if small else _anchors(a, b, alo, ahi, blo, bhi)
    if not anchors:
        matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
        ops.extend(
            (tag, alo + i1, alo + i2, blo + j1, blo + j2)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        )
        return
    for i, j in anchors:
        if i > alo or j > blo:
            _patience(a, b, alo, i, blo, j, ops)
        ops.append(("equal", i, i + 1, j, j + 1))
        alo, blo = i + 1, j + 1
    _patience(a, b, alo, ahi, blo, bhi, ops)


def _anchors(
    a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Lines unique on both sides, paired, longest increasing run of them (patience sort)."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and a[i] in where_b]
    if not pairs:
        return []
    # Longest increasing subsequence of the b positions, O(n log n).
    tails: list[int] = []  # b position ending the best run of each length
    tail_at: list[int] = []  # index into pairs of that end
    previous: list[int] = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        n = bisect.bisect_left(tails, j)
        if n == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[n] = j
            tail_at[n] = k
        previous[k] = tail_at[n - 1] if n else -1
    run: list[tuple[int, int]] = []
    k = tail_at[-1]
    while k >= 0:
        run.append(pairs[k])
        k = previous[k]
    run.reverse()
    return run


def _merged(ops: list[Opcode]) -> list[Opcode]:
    """Join neighbours: equal with equal, and any two changes (a replace unless both are
    the same kind)."""
    out: list[Opcode] = []
    for tag, i1, i2, j1, j2 in ops:
        if i1 == i2 and j1 == j2:
            continue
        if out:
            last, a1, _, b1, _ = out[-1]
            if (last == "equal") == (tag == "equal"):
                out[-1] = (tag if last == tag else "replace", a1, i2, b1, j2)
                continue
        out.append((tag, i1, i2, j1, j2))
    return out


def diff_documents(old: Any, new: Any) -> list[DiffRow]:
    """Side-by-side rows of two JSON values in canonical layout."""
    return side_by_side(canonical(old), canonical(new))


class CanonicalLayout:
    """``canonical(doc).splitlines()``, reusing the layout of subtrees seen before.

    Laying out a twin at the size limits in Python takes longer than the diff itself.
    An edit changes a few values, so the top levels are assembled here and each subtree
    below them is laid out once per distinct content, found by its compact encoding
    (which the C encoder makes in a fraction of the time).
    """

    SPLIT_LEVELS = 3  # root, properties, desired: their members are the reused pieces
    MAX_PIECES = 20_000

    def __init__(self) -> None:
        self._pieces: dict[str, list[str]] = {}

    def lines(self, doc: Any) -> list[str]:
        if len(self._pieces) > self.MAX_PIECES:
            self._pieces.clear()
        return self._lines(doc, 0)

    def _lines(self, value: Any, level: int) -> list[str]:
        """The value's lines, all but the first already indented for ``level``."""
        if not (isinstance(value, dict) and value and level < self.SPLIT_LEVELS):
            key = f"{level}:{_COMPACT(value)}"
            piece = self._pieces.get(key)
            if piece is None:
                first, *rest = canonical(value).splitlines()
                indent = "  " * level
                piece = self._pieces[key] = [first, *[indent + line for line in rest]]
            return piece
        indent = "  " * (level + 1)
        out = ["{"]
        items = sorted(value.items())
        last = len(items) - 1
        for n, (name, child) in enumerate(items):
            body = self._lines(child, level + 1)
            comma = "," if n < last else ""
            head = f"{indent}{_KEY(name)}: {body[0]}"
            if len(body) == 1:
                out.append(head + comma)
                continue
            out.append(head)
            out.extend(body[1:-1])
            out.append(body[-1] + comma)
        out.append("  " * level + "}")
        return out


_COMPACT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_KEY = json.JSONEncoder(ensure_ascii=False).encode


def unified(old: Any, new: Any, old_name: str = "hub", new_name: str = "editor") -> str:
    """A unified diff of two JSON values in canonical layout ('' when they are equal)."""
    lines = difflib.unified_diff(
        canonical(old).splitlines(),
        canonical(new).splitlines(),
        fromfile=old_name,
        tofile=new_name,
        lineterm="",
    )
    return "\n".join(lines)


def changed_rows(rows: list[DiffRow]) -> int:
    return sum(1 for row in rows if row.change is not Change.EQUAL)
