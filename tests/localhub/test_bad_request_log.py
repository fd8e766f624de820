"""A flood of malformed HTTP requests makes one short debug line each, not tracebacks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from twin_explorer.localhub.transports.rest.bad_requests import BadRequestLog

MALFORMED = [
    b"GET /devices HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",  # bad header line
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # request line too long
    b"GET /devices HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 20_000 + b"\r\n\r\n",
    b"POST /devices/query HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    b"GET /devices HTTP/9.9\r\n\r\n",
]
FLOOD = 40


async def _send(hub_server, hub_rest, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", hub_server.rest_port, ssl=hub_rest.ssl, server_hostname="localhost"
    )
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_a_flood_of_malformed_requests_logs_one_warning_and_short_debug_lines(
    hub_server, hub_rest, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    for i in range(FLOOD):
        answer = await _send(hub_server, hub_rest, MALFORMED[i % len(MALFORMED)])
        assert answer.split(b" ", 2)[1] in (b"400", b"505"), answer[:100]
    status, _ = await hub_rest.json("GET", "/statistics/service")
    assert status == 200
    records = caplog.records
    assert not [r for r in records if r.levelno >= logging.ERROR], [
        r.getMessage()[:200] for r in records if r.levelno >= logging.ERROR
    ]
    assert not [r for r in records if r.exc_info]  # no tracebacks
    bad = [r for r in records if "malformed HTTP request" in r.getMessage()]
    assert len([r for r in bad if r.levelno == logging.DEBUG]) == FLOOD
    assert len([r for r in bad if r.levelno == logging.WARNING]) == 1
    assert max(len(r.getMessage()) for r in bad) < 500


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _malformed_record() -> logging.LogRecord:
    from aiohttp.http_exceptions import BadHttpMessage

    error = BadHttpMessage("Invalid header")
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("10.0.0.1",),
        (type(error), error, None),
    )


def test_the_warning_comes_once_per_interval_and_counts_the_rest(caplog) -> None:
    clock = Clock()
    log = BadRequestLog(interval=60, clock=clock)
    caplog.set_level(logging.WARNING, "twin_explorer.localhub.transports.rest.bad_requests")
    for _ in range(5):
        assert log.filter(_malformed_record()) is False
    clock.now = 61
    assert log.filter(_malformed_record()) is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "more since" not in warnings[0]
    assert "(4 more since the last warning)" in warnings[1]


@pytest.mark.parametrize("exc_info", [None, (ValueError, ValueError("x"), None)])
def test_other_aiohttp_errors_keep_their_record(exc_info) -> None:
    record = logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (), exc_info
    )
    assert BadRequestLog().filter(record) is True
