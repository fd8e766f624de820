"""IoT Hub twin limits (reference C.6). Sizes are bytes; 1 KB is 1024 bytes."""

from __future__ import annotations

TAGS_MAX_BYTES = 8 * 1024
DESIRED_MAX_BYTES = 32 * 1024
REPORTED_MAX_BYTES = 32 * 1024

# Object levels below the section root (see validate.py for exactly what is counted).
MAX_DEPTH = 10

KEY_MAX_BYTES = 1024
STRING_MAX_BYTES = 4 * 1024

# Integers must fit in a double's 53-bit mantissa: -2**52 .. 2**52 - 1.
INT_MIN = -4503599627370496
INT_MAX = 4503599627370495

SECTION_MAX_BYTES = {
    "tags": TAGS_MAX_BYTES,
    "desired": DESIRED_MAX_BYTES,
    "reported": REPORTED_MAX_BYTES,
}

# Read-only bookkeeping keys allowed (and ignored) at the root of a section.
BOOKKEEPING_KEYS = frozenset({"$metadata", "$version"})
