"""C2D feedback records (the JSON array IoT Hub sends at ``/messages/serviceBound/feedback``)
and what they mean in words."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class FeedbackRecord:
    original_message_id: str
    status: str  # Success, Expired, DeliveryCountExceeded, Rejected, Purged
    description: str
    device_id: str
    enqueued: datetime | None  # when the hub recorded the outcome


def _when(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    # IoT Hub writes seven fractional digits; fromisoformat takes at most six.
    stem, _, rest = text.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        parsed = datetime.fromisoformat(f"{stem}.{fraction or '0'}")
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_feedback(body: bytes) -> list[FeedbackRecord]:
    """The records of one feedback message; entries that are not records are skipped."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        return []
    return [
        FeedbackRecord(
            str(item.get("originalMessageId") or ""),
            str(item.get("statusCode") or ""),
            str(item.get("description") or ""),
            str(item.get("deviceId") or ""),
            _when(item.get("enqueuedTimeUtc")),
        )
        for item in doc
        if isinstance(item, dict) and item.get("originalMessageId")
    ]


def outcome_text(record: FeedbackRecord) -> str:
    """The outcome as a sentence, with the local time of day it happened."""
    at = "" if record.enqueued is None else f" at {record.enqueued.astimezone():%H:%M:%S}"
    match record.status.casefold():
        case "success":
            return f"The device completed the message{at}."
        case "rejected":
            return f"The device rejected it{at}."
        case "expired":
            return f"It expired before the device took it{at}."
        case "deliverycountexceeded":
            return f"Delivery count exceeded: the device gave it back too often{at}."
        case "purged":
            return f"It was purged from the device's queue{at}."
    return f"Feedback: {record.status or 'unknown'} {record.description}".rstrip() + f"{at}."
