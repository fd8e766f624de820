"""What the AMQP codec raises on bad bytes (the engine turns it into a connection close)."""

from __future__ import annotations


class AmqpDecodeError(ValueError):
    """Bytes that are not valid AMQP (a truncated value, an unknown type code, ...)."""


class AmqpFramingError(AmqpDecodeError):
    """A frame header that breaks the framing rules (size, doff, type)."""
