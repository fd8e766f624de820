"""Recent device-to-cloud messages, kept in memory for the app to show.

A bounded ring per identity plus a running count: the hub is an inspection tool, not an
event store, so old messages fall off and nothing is written to disk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

RING_SIZE = 1000


@dataclass
class _Stream:
    messages: deque[dict[str, Any]]
    count: int = 0


@dataclass
class TelemetryBuffer:
    ring_size: int = RING_SIZE
    _streams: dict[tuple[str, str], _Stream] = field(default_factory=dict)

    def record(
        self,
        device_id: str,
        module_id: str | None,
        properties: dict[str, Any],
        system_properties: dict[str, Any],
        body: bytes,
        enqueued: str,
    ) -> None:
        key = (device_id, module_id or "")
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(deque(maxlen=self.ring_size))
        stream.count += 1
        stream.messages.append(
            {
                "sequence": stream.count,
                "enqueuedTime": enqueued,
                "deviceId": device_id,
                "moduleId": module_id,
                "properties": dict(properties),
                "systemProperties": dict(system_properties),
                "body": bytes(body),
            }
        )

    def recent(self, device_id: str, module_id: str | None, limit: int | None) -> list[dict]:
        """The newest ``limit`` messages (all kept if None), oldest first."""
        stream = self._streams.get((device_id, module_id or ""))
        if stream is None:
            return []
        items = list(stream.messages)
        return items if limit is None else items[max(0, len(items) - limit) :]

    def count(self, device_id: str, module_id: str | None) -> int:
        stream = self._streams.get((device_id, module_id or ""))
        return 0 if stream is None else stream.count

    def forget(self, device_id: str, module_id: str | None) -> None:
        """Drop an identity's messages; None as module drops the device and its modules."""
        if module_id is not None:
            self._streams.pop((device_id, module_id), None)
            return
        for key in [k for k in self._streams if k[0] == device_id]:
            del self._streams[key]
