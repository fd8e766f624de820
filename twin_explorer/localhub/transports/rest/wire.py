"""Turning HTTP requests into core arguments and core results into IoT Hub responses.

Everything here is about the wire format the service SDK expects (reference B.3-B.7):
JSON in, ``application/json; charset=utf-8`` out, errors as the ``{"Message",
"ExceptionMessage"}`` envelope with an ``iothub-errorcode`` header. A body the hub cannot
read is always a 400 with a sentence saying why, never a 500.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from twin_explorer.localhub.errors import HubError, argument_invalid

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# Twins are at most 8 KB + 2 x 32 KB and method payloads 128 KB (C.6); 1 MB leaves room
# for verbose clients while keeping a hostile body from costing real memory.
MAX_BODY_BYTES = 1 << 20
# Twin sections allow 10 levels (C.6) under a few levels of envelope; anything deeper
# is refused before the core walks it recursively.
MAX_JSON_DEPTH = 64


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return json_bytes_response(dumps(value), status=status, headers=headers)


def json_bytes_response(
    body: bytes, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    all_headers = {"Content-Type": JSON_CONTENT_TYPE}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=body, headers=all_headers)


def no_content() -> web.Response:
    """DELETE answers 204 with no body at all (B.4: the SDK accepts only 204)."""
    return web.Response(status=204)


def error_response(error: HubError) -> web.Response:
    return json_response(
        error.to_body(), status=error.status, headers={"iothub-errorcode": error.error_code}
    )


def nested_error_response(error: HubError, info: dict[str, Any] | None = None) -> web.Response:
    """The envelope some hub errors come in (B.7): the newer JSON error, as a string,
    inside ``Message``, and an empty ``ExceptionMessage``."""
    inner: dict[str, Any] = {
        "errorCode": error.numeric,
        "trackingId": secrets.token_hex(16),
        "message": error.message,
    }
    if info is not None:
        inner["info"] = info
    inner["timestampUtc"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json_response(
        {"Message": json.dumps(inner, separators=(",", ":")), "ExceptionMessage": ""},
        status=error.status,
        headers={"iothub-errorcode": error.error_code},
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(raw: bytes) -> Any:
    """The request body as JSON, or a 400 HubError that says what is wrong with it."""
    if not raw.strip():
        raise argument_invalid("The request body is empty; expected a JSON document.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise argument_invalid("The request body is not UTF-8 text.") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise argument_invalid("The request body is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise argument_invalid(f"The request body is not valid JSON: {exc}.") from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise argument_invalid(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    # Iterative so a hostile document cannot exhaust the interpreter stack here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise argument_invalid(
            f"The request body is larger than the {MAX_BODY_BYTES} bytes this hub accepts."
        ) from None
    return parse_json(raw)


def read_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise argument_invalid(f"The {what} must be a JSON object.")
    return value


def int_param(text: str | None, name: str, low: int, high: int) -> int | None:
    """An optional integer header or query parameter within ``low..high``."""
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise argument_invalid(f"{name} must be an integer, not {text!r}.") from None
    if not low <= value <= high:
        raise argument_invalid(f"{name} must be between {low} and {high}, not {value}.")
    return value
