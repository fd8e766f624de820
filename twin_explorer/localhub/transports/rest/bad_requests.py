"""Requests aiohttp cannot parse: one short line each at debug level, not a traceback.

aiohttp's request handler logs every malformed request (a bad request line, an
over-long header, garbage on the port) on ``aiohttp.server`` at ERROR with a full
traceback, from ``RequestHandler.handle_error``: a flood of bad input would flood the
log and stderr. A filter on that logger turns each into one concise debug line, and
says so at warning level at most once per ``interval``, with how many came meanwhile.
Failures of the hub's own handlers are not malformed requests and keep their traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

from twin_explorer.connection.redact import clip

logger = logging.getLogger(__name__)

AIOHTTP_LOGGER = "aiohttp.server"
WARNING_INTERVAL = 60.0  # seconds between two warnings about malformed requests


class BadRequestLog(logging.Filter):
    def __init__(
        self, interval: float = WARNING_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._next_warning = float("-inf")
        self._unreported = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        reason = clip(f"{error.code} {error.message}".strip(), 200)
        logger.debug("malformed HTTP request from %s: %s", remote, reason)
        now = self._clock()
        if now < self._next_warning:
            self._unreported += 1
        else:
            more = f" ({self._unreported} more since the last warning)" if self._unreported else ""
            logger.warning(
                "malformed HTTP request from %s: %s%s; the next %.0f s log them at debug only",
                remote,
                reason,
                more,
                self._interval,
            )
            self._next_warning = now + self._interval
            self._unreported = 0
        return False


def quiet_malformed_requests(interval: float = WARNING_INTERVAL) -> BadRequestLog:
    """Install one :class:`BadRequestLog` on aiohttp's server logger (idempotent)."""
    server_logger = logging.getLogger(AIOHTTP_LOGGER)
    for existing in server_logger.filters:
        if isinstance(existing, BadRequestLog):
            return existing
    installed = BadRequestLog(interval)
    server_logger.addFilter(installed)
    return installed
