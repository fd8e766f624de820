"""Hypothesis strategies for twin-shaped JSON documents (kept small so examples are cheap)."""

from __future__ import annotations

from hypothesis import strategies as st

# Few, short keys so that old and new documents share keys often.
keys = st.sampled_from(["a", "b", "c", "é", "ключ"])

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**52), max_value=2**52 - 1),
    st.sampled_from([0.5, -1.25, 1e300, 0.0]),
    st.text(max_size=4),
)

# Arrays are opaque values: they may hold nulls and objects with null members.
arrays = st.lists(
    st.one_of(scalars, st.none(), st.dictionaries(keys, st.one_of(scalars, st.none()), max_size=2)),
    max_size=3,
)

# Member values of a stored section: never null at object level.
members = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)

documents = st.dictionaries(keys, members, max_size=4)

# Merge patches: like documents but null members (deletions) allowed at any object level.
patches = st.dictionaries(
    keys,
    st.recursive(
        st.one_of(scalars, st.none(), arrays),
        lambda inner: st.dictionaries(keys, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)
