"""Continuation tokens and page sizes (C.8)."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin_explorer.localhub.core.query import (
    BadContinuation,
    BadPageSize,
    decode_token,
    encode_token,
    page_size,
)

PAYLOADS = st.dictionaries(
    st.text(max_size=5).filter(lambda k: k != "v"),
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    max_size=4,
)


@given(PAYLOADS)
def test_round_trip_and_header_safe(payload):
    token = encode_token(payload)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert decode_token(token) == payload


def test_token_is_opaque_and_versioned():
    token = encode_token({"offset": 100, "snapshot": "s1"})
    assert "offset" not in token
    assert decode_token(token) == {"offset": 100, "snapshot": "s1"}


@pytest.mark.parametrize(
    "token",
    ["", "not a token", "abc", "!!!!", "x" * 5000, "eyJ2IjoxfQ", "A" * 40, "ÿÿÿÿ"],
)
def test_garbage_is_rejected(token):
    with pytest.raises(BadContinuation):
        decode_token(token)


def test_any_damaged_character_is_rejected():
    token = encode_token({"offset": 100})
    for index in range(len(token)):
        replacement = "A" if token[index] != "A" else "B"
        damaged = token[:index] + replacement + token[index + 1 :]
        with pytest.raises(BadContinuation):
            decode_token(damaged)
    with pytest.raises(BadContinuation):
        decode_token(token[:-2])


def test_hand_made_token_is_rejected():
    forged = base64.urlsafe_b64encode(b"\0" * 16 + b'{"v":1,"offset":0}').rstrip(b"=").decode()
    with pytest.raises(BadContinuation):
        decode_token(forged)


def test_a_key_binds_tokens_to_one_hub():
    token = encode_token({"offset": 5}, key=b"hub secret")
    assert decode_token(token, key=b"hub secret") == {"offset": 5}
    with pytest.raises(BadContinuation):
        decode_token(token, key=b"another hub")
    with pytest.raises(BadContinuation):
        decode_token(token)


def test_bad_continuation_is_a_value_error():
    assert issubclass(BadContinuation, ValueError)


def test_version_field_is_reserved():
    with pytest.raises(ValueError, match="reserved"):
        encode_token({"v": 2})


@pytest.mark.parametrize(
    ("header", "size"),
    [(None, 100), ("1", 1), ("100", 100), (" 250 ", 250), ("1000", 1000), ("1001", 1000)],
)
def test_page_size(header, size):
    assert page_size(header) == size


@pytest.mark.parametrize("header", ["", "0", "-5", "ten", "1.5", "1e3", "٣", "0x10"])
def test_invalid_page_size(header):
    with pytest.raises(BadPageSize):
        page_size(header)
