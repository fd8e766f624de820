"""Running IoT Hub queries against the store: SQL filtering and keyset paging (C.8).

The WHERE clause compiles to SQLite (``query.sql.to_sql``) over the stored service-view
``doc``, with ``deviceId``/``moduleId``/``status``/``connectionState`` read from real
columns. Pages follow ``(device_id, module_id)`` order on an index, and a continuation
token holds the last key returned: pages stay stable while twins change, and each page
costs the same however deep the client has paged. A token also carries a hash of the
query text, so it cannot continue a different query.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from twin_explorer.localhub.core.query import (
    BadContinuation,
    BadPageSize,
    Count,
    Expr,
    Query,
    QuerySyntaxError,
    SelectStar,
    decode_token,
    encode_token,
    page_size,
    parse,
    project,
    to_sql,
)
from twin_explorer.localhub.errors import argument_invalid

MAX_QUERY_LENGTH = 8192  # C.6

# Paths with a real TEXT column (NULL where the doc lacks the path, as to_sql requires:
# device twins have no moduleId, so that column only serves devices.modules).
_DEVICE_COLUMNS = {
    ("deviceId",): "device_id",
    ("status",): "status",
    ("connectionState",): "connection_state",
}
_MODULE_COLUMNS = {**_DEVICE_COLUMNS, ("moduleId",): "module_id"}


def where_sql(where: Expr | None, *, modules: bool) -> tuple[str, list[Any]]:
    """A WHERE over the ``twins`` table's ``doc`` and columns, for devices or modules
    (callers add ``is_module = ?``)."""
    columns = _MODULE_COLUMNS if modules else _DEVICE_COLUMNS
    return to_sql(where, json_column="doc", columns=columns)


@dataclass(frozen=True)
class QueryPage:
    """One page: REST sends ``items`` as the body, ``item_type`` as ``x-ms-item-type``
    and ``continuation`` (when not None) as ``x-ms-continuation``."""

    items: list[dict[str, Any]]
    item_type: Literal["twin", "raw"]
    continuation: str | None


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _parse(text: object) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise argument_invalid("The query is empty.")
    if len(text) > MAX_QUERY_LENGTH:
        raise argument_invalid(
            f"The query is {len(text)} characters long; at most {MAX_QUERY_LENGTH} are allowed."
        )
    try:
        return parse(text)
    except QuerySyntaxError as exc:
        raise argument_invalid(f"Invalid query: {exc}") from None


def _resume(token: str | None, text: str, key: bytes | None) -> tuple[str, str, int] | None:
    """(last device id, last module id, items returned so far) from a continuation."""
    if token is None:
        return None
    try:
        payload = decode_token(token, key=key)
    except BadContinuation as exc:
        raise argument_invalid(f"Invalid continuation token: {exc}.") from None
    if payload.get("q") != _fingerprint(text):
        raise argument_invalid(
            "Invalid continuation token: it belongs to a different query; send the same "
            "query text with it."
        )
    last_d, last_m, done = payload.get("d"), payload.get("m"), payload.get("n")
    if not (isinstance(last_d, str) and isinstance(last_m, str) and isinstance(done, int)):
        raise argument_invalid("Invalid continuation token: it is damaged.")
    return last_d, last_m, max(done, 0)


def _page_size(max_item_count: int | str | None) -> int:
    try:
        return page_size(None if max_item_count is None else str(max_item_count))
    except BadPageSize as exc:
        raise argument_invalid(str(exc)) from None


def run_query(
    conn: sqlite3.Connection,
    text: str,
    max_item_count: int | str | None,
    continuation: str | None,
    *,
    token_key: bytes | None = None,
) -> QueryPage:
    """Execute one page of ``text``; every client error is a 400 HubError.

    ``token_key`` signs continuation tokens, so a hub only resumes tokens it issued.
    """
    query = _parse(text)
    size = _page_size(max_item_count)
    resume = _resume(continuation, text, token_key)
    is_module = int(query.collection == "devices.modules")
    where, params = where_sql(query.where, modules=bool(is_module))

    if isinstance(query.select, Count):
        # One aggregate item; nothing to page.
        row = conn.execute(
            f"SELECT COUNT(*) FROM twins WHERE is_module = ? AND ({where})", (is_module, *params)
        ).fetchone()
        return QueryPage([{query.select.alias: int(row[0])}], "raw", None)

    done = 0
    keyset, key_params = "", ()
    if resume is not None:
        last_d, last_m, done = resume
        keyset, key_params = " AND (device_id, module_id) > (?, ?)", (last_d, last_m)
    limit = size if query.top is None else max(0, min(size, query.top - done))
    rows = conn.execute(
        f"SELECT device_id, module_id, doc FROM twins WHERE is_module = ?{keyset}"
        f" AND ({where}) ORDER BY is_module, device_id, module_id LIMIT ?",
        (is_module, *key_params, *params, limit + 1),
    ).fetchall()

    more = len(rows) > limit and (query.top is None or done + limit < query.top)
    rows = rows[:limit]
    docs = [json.loads(row[2]) for row in rows]
    if isinstance(query.select, SelectStar):
        items, item_type = docs, "twin"
    else:
        items, item_type = [project(query, doc) for doc in docs], "raw"
    token = None
    if more and rows:
        last = rows[-1]
        token = encode_token(
            {"q": _fingerprint(text), "d": last[0], "m": last[1], "n": done + len(rows)},
            key=token_key,
        )
    return QueryPage(items, item_type, token)


class QueryReader:
    """Query pages for another thread: its own read-only connection to the hub's file,
    and the same continuation tokens as ``HubCore.query`` (interchangeable with them)."""

    def __init__(self, open_connection: Callable[[], sqlite3.Connection], token_key: bytes):
        self._open = open_connection
        self._token_key = token_key
        self._conn: sqlite3.Connection | None = None

    def run(
        self, text: object, max_item_count: int | str | None, continuation: str | None
    ) -> QueryPage:
        if self._conn is None:
            self._conn = self._open()
        return run_query(
            self._conn,
            text,  # type: ignore[arg-type]  # run_query answers a non-string with a 400
            max_item_count,
            continuation,
            token_key=self._token_key,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
