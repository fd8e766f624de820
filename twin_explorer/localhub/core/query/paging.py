"""Continuation tokens and page sizes for query paging (reference C.8).

A token is the URL- and header-safe base64 (no padding) of a 16-byte MAC followed by
compact JSON: ``{"v": 1, ...payload}``. The MAC is HMAC-SHA256 truncated; with the
default key it only catches damaged or hand-made tokens, and a hub that passes its own
secret ``key`` also rejects forged ones. Either way the store must check the payload's
fields (types, ranges) itself: decoding proves only that the token is intact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from twin_explorer.localhub.core.query.errors import BadContinuation, BadPageSize

TOKEN_VERSION = 1
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # the SDKs document page sizes of up to 1000
MAX_TOKEN_LENGTH = 4096

_DEFAULT_KEY = b"twin-explorer continuation token"
_MAC_SIZE = 16
_VERSION_FIELD = "v"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _mac(body: bytes, key: bytes | None) -> bytes:
    return hmac.new(key or _DEFAULT_KEY, body, hashlib.sha256).digest()[:_MAC_SIZE]


def encode_token(payload: dict[str, Any], *, key: bytes | None = None) -> str:
    """An opaque token carrying ``payload`` (JSON-serializable; ``"v"`` is reserved)."""
    if _VERSION_FIELD in payload:
        raise ValueError(f"the payload key {_VERSION_FIELD!r} is reserved for the token version")
    body = json.dumps(
        {_VERSION_FIELD: TOKEN_VERSION, **payload}, separators=(",", ":"), sort_keys=True
    ).encode()
    token = base64.urlsafe_b64encode(_mac(body, key) + body).rstrip(b"=").decode("ascii")
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"the token payload is too large ({len(token)} characters)")
    return token


def decode_token(token: str, *, key: bytes | None = None) -> dict[str, Any]:
    """The payload of a token from ``encode_token``; ``BadContinuation`` for anything else."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise BadContinuation("the continuation token is empty or too long")
    if not _BASE64URL.fullmatch(token):
        raise BadContinuation("the continuation token is not valid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadContinuation("the continuation token is not valid") from exc
    mac, body = raw[:_MAC_SIZE], raw[_MAC_SIZE:]
    if len(mac) != _MAC_SIZE or not hmac.compare_digest(mac, _mac(body, key)):
        raise BadContinuation("the continuation token was not issued by this hub or is damaged")
    try:
        payload = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise BadContinuation("the continuation token is not valid") from exc
    if not isinstance(payload, dict) or payload.pop(_VERSION_FIELD, None) != TOKEN_VERSION:
        raise BadContinuation("the continuation token has an unknown version")
    return payload


def page_size(header: str | None) -> int:
    """Page size from ``x-ms-max-item-count``: 100 when absent, capped at 1000."""
    if header is None:
        return DEFAULT_PAGE_SIZE
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        raise BadPageSize(f"x-ms-max-item-count must be a positive whole number, not {header!r}")
    return min(int(text), MAX_PAGE_SIZE)
