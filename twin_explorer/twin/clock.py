"""Timestamps in the form IoT Hub writes them (reference B.6, C.2)."""

from __future__ import annotations

import time

# What the hub shows for "never happened".
NEVER = "0001-01-01T00:00:00Z"


def utc_now() -> str:
    """The current UTC time with 7 fractional digits, e.g. ``2024-01-01T12:34:56.1234567Z``."""
    return format_ns(time.time_ns())


def format_ns(epoch_ns: int) -> str:
    """Format nanoseconds since the Unix epoch with 100 ns resolution, as .NET ticks do."""
    seconds, ns = divmod(epoch_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 100:07d}Z"
