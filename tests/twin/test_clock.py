from __future__ import annotations

import re
from datetime import datetime

from twin_explorer.twin.clock import NEVER, format_ns, utc_now


def test_utc_now_has_seven_fractional_digits():
    text = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", text)
    # Parses as ISO 8601 once trimmed to microseconds, as msrest does.
    assert datetime.fromisoformat(text[:26] + "+00:00").year >= 2024


def test_format_ns_exact():
    assert format_ns(0) == "1970-01-01T00:00:00.0000000Z"
    assert format_ns(1_704_112_496_123_456_789) == "2024-01-01T12:34:56.1234567Z"


def test_never():
    assert NEVER == "0001-01-01T00:00:00Z"
