"""AMQP frame layer (spec 2.3): protocol headers, the 8-byte frame header, frame splitting.

`FrameReader` takes bytes as they come and yields whole frames; it holds at most one
partial frame (bounded by the max frame size it enforces) and consumes from the front of
one buffer, so the cost per input byte is flat however the input is chunked.
"""

from __future__ import annotations

import struct
from typing import Any

from .exceptions import AmqpFramingError
from .types import encode_into

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
HEADER_SIZE = 8
AMQP_FRAME = 0
SASL_FRAME = 1
MIN_MAX_FRAME_SIZE = 512  # spec 2.7.1: no peer may ask for smaller frames
EMPTY_FRAME = b"\x00\x00\x00\x08\x02\x00\x00\x00"  # a heartbeat

_header = struct.Struct(">IBBH")


def encode_frame(channel: int, performative: Any, payload: bytes = b"",
                 frame_type: int = AMQP_FRAME) -> bytes:
    out = bytearray(HEADER_SIZE)
    encode_into(performative, out)
    out += payload
    _header.pack_into(out, 0, len(out), 2, frame_type, channel)
    return bytes(out)


class FrameReader:
    """Incremental frame parser: `feed()` bytes, then `next_frame()` until None."""

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def take(self, n: int) -> bytes | None:
        """Exactly n raw bytes (a protocol header), or None until they have arrived."""
        if len(self._buffer) < n:
            return None
        chunk = bytes(self._buffer[:n])
        del self._buffer[:n]  # bytearray drops a prefix in O(1) amortised
        return chunk

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_frame(self) -> tuple[int, int, bytes] | None:
        """(frame type, channel, body) of the next whole frame, or None if incomplete."""
        buffer = self._buffer
        if len(buffer) < HEADER_SIZE:
            return None
        size, doff, frame_type, channel = _header.unpack_from(buffer, 0)
        if size > self.max_frame_size:
            raise AmqpFramingError(f"frame of {size} bytes over the {self.max_frame_size} limit")
        if doff < 2 or doff * 4 > size:
            raise AmqpFramingError("bad frame header (size or data offset)")
        if frame_type not in (AMQP_FRAME, SASL_FRAME):
            raise AmqpFramingError(f"unknown frame type {frame_type}")
        if len(buffer) < size:
            return None
        body = bytes(buffer[doff * 4:size])
        del buffer[:size]
        return frame_type, channel, body
