"""Twin changes from the hub's event stream into the patch log, as they happen.

IoT Hub routes a twin change notification (``iothub-message-source:
twinChangeEvents``) for every write to any twin: its body holds the twin's version and
the changed parts (``tags``, ``properties.desired``/``reported``). Each part becomes an
OBSERVED ``PatchEvent`` with who made it: this app's own writes are already in the log
(as SENT or REPORTED, remembered here for a while) and are not shown twice; a reported
change came from the device; anything else from another service client.

While notifications flow the watcher stops polling (``TwinWatcher.notified``); when the
stream stops or fails, polling by etag takes over again."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from twin_explorer.service.events.consumer import State, Status
from twin_explorer.service.events.record import EventRecord, Source
from twin_explorer.service.events.stream import EventStream
from twin_explorer.service.watch import TwinWatcher, own_parts
from twin_explorer.twin.events import Direction, PatchEvent, PatchStream, Section
from twin_explorer.twin.merge import is_noop

FROM_DEVICE = "device"
FROM_SERVICE = "another client"
NOTIFIED_SOURCES = frozenset((FROM_DEVICE, FROM_SERVICE))
OWN_TTL = 120.0  # seconds an own write waits for its notification
OWN_KEPT = 500
# Older notifications (a stream read again from the beginning) are history, not news.
NEWS_WINDOW = timedelta(seconds=30)


@dataclass(frozen=True)
class _Own:
    identity: str
    section: Section
    body: dict[str, Any]
    version: int | None
    at: float


def notification_parts(body: Any) -> list[tuple[Section, dict[str, Any], int | None]]:
    """The changed parts of a twin change notification body, with their ``$version``."""
    if not isinstance(body, dict):
        return []
    parts: list[tuple[Section, dict[str, Any], int | None]] = []
    tags = body.get("tags")
    if isinstance(tags, dict):
        parts.append((Section.TAGS, tags, None))
    properties = body.get("properties")
    if isinstance(properties, dict):
        for section in (Section.DESIRED, Section.REPORTED):
            part = properties.get(section.value)
            if isinstance(part, dict):
                version = part.get("$version")
                plain = {k: v for k, v in part.items() if k not in ("$version", "$metadata")}
                parts.append((section, plain, version if isinstance(version, int) else None))
    return parts


class TwinNotifications:
    """Feeds the patch log from the event stream and tells the watcher when to poll."""

    def __init__(self, patches: PatchStream, stream: EventStream, watcher: TwinWatcher) -> None:
        self.patches = patches
        self.watcher = watcher
        self._own: deque[_Own] = deque(maxlen=OWN_KEPT)
        self.shown = 0  # notifications published, this session
        self._unsubscribe = [
            patches.subscribe(self._on_patch),
            stream.batches.subscribe(self._on_batch),
            stream.status.subscribe(self._on_status),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.watcher.notified = False

    def _on_status(self, status: Status) -> None:
        if status.state is not State.RECEIVING:
            self.watcher.notified = False  # polling is the fallback again

    def _on_patch(self, event: PatchEvent) -> None:
        if event.direction not in (Direction.SENT, Direction.REPORTED) or not event.changes_twin:
            return
        now = time.monotonic()
        for section, body, version in own_parts(event):
            self._own.append(_Own(event.identity, section, body, version, now))

    def _on_batch(self, batch: list[EventRecord]) -> None:
        horizon = datetime.now(UTC) - NEWS_WINDOW
        for record in batch:
            if record.source is not Source.TWIN:
                continue
            self.watcher.notified = True  # routed: no need to poll
            if record.time < horizon:
                continue
            self._publish(record)
            self.watcher.poll_soon(record.identity)  # its history sees the new version

    def _publish(self, record: EventRecord) -> None:
        identity = record.identity
        for section, body, version in notification_parts(record.json()):
            if self._take_own(identity, section, body, version):
                continue
            source = FROM_DEVICE if section is Section.REPORTED else FROM_SERVICE
            self.patches.publish(
                PatchEvent(
                    record.device_id,
                    record.module_id,
                    Direction.OBSERVED,
                    section,
                    body,
                    version=version,
                    source=source,
                )
            )
            self.shown += 1

    def _take_own(
        self, identity: str, section: Section, body: dict[str, Any], version: int | None
    ) -> bool:
        """Whether this part is one of this app's own writes (then forget that write)."""
        horizon = time.monotonic() - OWN_TTL
        while self._own and self._own[0].at < horizon:
            self._own.popleft()
        for own in self._own:
            if own.identity != identity or own.section is not section:
                continue
            if own.version is not None and version is not None:
                mine = own.version == version
            else:  # by content: the notification holds the write (tags: the whole set)
                mine = is_noop(body, own.body)
            if mine:
                self._own.remove(own)
                return True
        return False
