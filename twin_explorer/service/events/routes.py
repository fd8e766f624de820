"""Whether the hub seems to route only telemetry to its built-in endpoint, and how to add
routes for the notifications (twin changes, lifecycle, connection state).

IoT Hub sends those to the ``events`` endpoint only through routes of their data
sources, which a new Azure hub does not have; the local hub's ``--routes`` can leave them
out too. Telemetry flowing for a while with not one notification is the sign."""

from __future__ import annotations

from collections.abc import Iterable

from twin_explorer.service.events.record import EventRecord, Source

NOTIFICATIONS = frozenset({Source.TWIN, Source.LIFECYCLE, Source.CONNECTION})
QUIET_SECONDS = 60.0

ROUTE_HINT = (
    "Only telemetry so far: route the notifications to the built-in endpoint (Azure: "
    "Message routing → Add route for each data source; local hub: twin-explorer hub "
    "--routes telemetry,twin,lifecycle,connection)."
)
ROUTE_DETAILS = (
    "Twin change, lifecycle and connection events reach this stream only through routes. "
    "Azure portal → your IoT hub → Message routing → Add: one route each with data source "
    "Device twin change events, Device lifecycle events and Device connection state "
    'events, endpoint "events" (the built-in one). The local hub keeps its --routes '
    "setting; start it with --routes telemetry,twin,lifecycle,connection."
)


class SourcesSeen:
    """Which sources arrived since the stream started reading (``restart``)."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self.seen: set[Source] = set()
        self.since: float | None = None  # time.monotonic() of the start

    def restart(self, now: float) -> None:
        self.seen.clear()
        self.since = now

    def add(self, records: Iterable[EventRecord]) -> None:
        if len(self.seen) < len(Source):  # once every source came, nothing more to learn
            self.seen.update({record.source for record in records})

    def hint(self, wanted: Iterable[Source], now: float) -> str | None:
        """``ROUTE_HINT`` when notifications are wanted, telemetry came and, for
        ``quiet_seconds`` since the start, not one notification."""
        if self.since is None or now - self.since < self.quiet_seconds:
            return None
        if Source.TELEMETRY not in self.seen or self.seen & NOTIFICATIONS:
            return None
        return ROUTE_HINT if NOTIFICATIONS & set(wanted) else None
