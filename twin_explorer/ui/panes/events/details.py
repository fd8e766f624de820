"""The selected event in full: the decoded body, then its application and system
properties, as plain text people can select and copy."""

from __future__ import annotations

from twin_explorer.service.events.record import EventRecord
from twin_explorer.ui.panes.events.model import SOURCE_NAMES


def details_text(record: EventRecord) -> str:
    encoding, body = record.decoded()
    lines = [
        f"{SOURCE_NAMES[record.source]} from {record.identity or '(no identity)'}",
        f"Enqueued {record.time.isoformat()} · partition {record.partition} · "
        f"sequence {record.sequence}",
        "",
        f"Body ({encoding.value}, {len(record.body):,} bytes):",
        body,
    ]
    for title, values in (
        ("Application properties", record.properties),
        ("System properties", record.system),
    ):
        lines += ["", f"{title}:"]
        lines += [f"  {k}: {v}" for k, v in sorted(values.items())] or ["  (none)"]
    return "\n".join(lines)
