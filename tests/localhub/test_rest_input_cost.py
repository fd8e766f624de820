"""No REST input costs the hub more than linear work: time per byte is flat from 1 KB to
1 MB for ids in the path, bodies, query text and headers (an in-process hub over TLS;
CPU time of this process, so other processes on the machine do not count)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.linear import assert_linear_async
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.transports.rest.wire import parse_json

DEVICE = {"deviceId": "d1", "status": "enabled", "authentication": {"type": "sas"}}
pytestmark = pytest.mark.timeout(300)


def _query(text: str) -> dict:
    return {"query": text}


BODIES = {
    "twin value": ("PATCH", "/twins/d1", lambda n: {"properties": {"desired": {"k": "v" * n}}}),
    "twin keys": (
        "PATCH",
        "/twins/d1",
        lambda n: {"properties": {"desired": {f"k{i}": i for i in range(n // 12)}}},
    ),
    "nested": (
        "PATCH",
        "/twins/d1",
        lambda n: {"tags": json.loads("[" * 40 + "]" * 40)} | {"x": ["a"] * (n // 4)},
    ),
    "query string": (
        "POST",
        "/devices/query",
        lambda n: _query("SELECT * FROM devices WHERE deviceId = '" + "a" * n + "'"),
    ),
    "query ors": (
        "POST",
        "/devices/query",
        lambda n: _query(
            "SELECT * FROM devices WHERE " + " OR ".join(["deviceId = 'x'"] * (n // 19))
        ),
    ),
    "query tokens": ("POST", "/devices/query", lambda n: _query("SELECT " + "a." * (n // 2))),
    "method payload": (
        "POST",
        "/twins/d1/methods",
        lambda n: {"methodName": "m", "payload": "p" * n, "responseTimeoutInSeconds": 5},
    ),
    "device": ("PUT", "/devices/d2", lambda n: DEVICE | {"deviceId": "d2", "x": "y" * n}),
}


@pytest.mark.parametrize("shape", sorted(BODIES))
async def test_a_body_costs_the_same_per_byte_up_to_1_mb(hub_rest, shape) -> None:
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    method, path, body = BODIES[shape]

    async def send(data: bytes) -> None:
        status, _, _ = await hub_rest.request(method, path, data=data)
        assert status < 500

    await assert_linear_async(
        send,
        lambda n: json.dumps(body(n)).encode(),
        clock=time.process_time,
        what=f"{method} {shape}",
    )


@pytest.mark.parametrize(
    "request_of",
    [
        lambda n: ("GET", "/devices/" + "d" * n, {}),
        lambda n: ("GET", "/twins/" + "%41" * (n // 3) + "/modules/m", {}),
        lambda n: ("GET", "/devices", {"x-ms-max-item-count": "9" * n}),
        lambda n: ("GET", "/devices", {"x-ms-continuation": "c" * n}),
        lambda n: ("PUT", "/devices/d3", {"If-Match": '"' + "e" * n + '"'}),
        lambda n: ("GET", "/devices", {"Authorization": "SharedAccessSignature sr=" + "s" * n}),
    ],
    ids=["device id", "encoded id", "item count", "continuation", "if-match", "authorization"],
)
async def test_a_path_or_header_costs_the_same_per_byte_up_to_1_mb(hub_rest, request_of):
    async def send(n: int) -> None:
        method, path, headers = request_of(n)
        data = json.dumps(DEVICE) if method == "PUT" else None
        status, _, _ = await hub_rest.request(method, path, headers=headers, data=data)
        assert status < 500

    # The input is its size: aiohttp refuses lines over 8 KB with a 400 at once.
    await assert_linear_async(send, lambda n: n, clock=time.process_time, what="a request")


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([b"[", b"{", b'{"a":', b"", b'"', b"\xef\xbb\xbf"]),
    st.binary(min_size=1, max_size=32) | st.sampled_from([b"[1,", b'{"k":{', b'"\\u00', b" "]),
    st.sampled_from([1024, 64 * 1024, 1024 * 1024]),
)
def test_big_hostile_bodies_are_read_in_bounded_time(prefix, pattern, size) -> None:
    body = prefix + (pattern * (size // len(pattern) + 1))[:size]
    start = time.thread_time()
    try:
        parse_json(body)
    except HubError as error:
        assert error.status == 400 and len(error.message) < 2000
    assert time.thread_time() - start < 2.0  # linear work on 1 MB takes milliseconds
