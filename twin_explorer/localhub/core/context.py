"""What every part of the hub core shares: store, clock, listeners, etags, activity."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from twin_explorer.localhub.core.events import EventBus
from twin_explorer.localhub.core.identity import etag_text, generation_id
from twin_explorer.localhub.errors import (
    DiskFull,
    HubError,
    device_not_found,
    module_not_found,
)
from twin_explorer.localhub.store.sqlite import Store
from twin_explorer.twin.clock import format_ns

log = logging.getLogger(__name__)

# lastActivityTime is written behind: busy telemetry must not cost a write per message.
ACTIVITY_FLUSH_SECONDS = 5.0


class RemovalReason(enum.Enum):
    """Why live connections of an identity must go (on_identity_removed)."""

    DELETED = "deleted"  # the identity is gone; sessions can go too
    DISABLED = "disabled"  # the device was disabled; it and its modules are refused
    CREDENTIALS = "credentials"  # keys or thumbprints changed; old tokens are void


DesiredListener = Callable[[str, str | None, dict[str, Any]], None]
RemovedListener = Callable[[str, str | None, RemovalReason], None]
TwinListener = Callable[[str, str | None], None]


def _call_all(listeners: list[Callable[..., None]], *args: object) -> None:
    for callback in list(listeners):
        # The write is committed; a failing listener must not turn it into an error.
        try:
            callback(*args)
        except Exception:
            log.exception("hub listener %r failed", callback)


class CoreContext:
    """Shared plumbing, handed to each part of the core (registry, twins, bulk, ...)."""

    def __init__(self, store: Store, hostname: str, clock: Callable[[], int]) -> None:
        self.store = store
        self.hostname = hostname
        self._clock = clock
        self.bus = EventBus()
        self._desired_listeners: list[DesiredListener] = []
        self._removed_listeners: list[RemovedListener] = []
        self._twin_listeners: list[TwinListener] = []
        self._etag_counter = int(store.get_meta("etag_counter") or 0)
        self._last_ticks = 0
        self._pending_activity: dict[tuple[str, str], str] = {}
        self._last_flush = time.monotonic()

    # -- time and ids -------------------------------------------------------------------

    def now(self) -> str:
        return format_ns(self._clock())

    def now_ns(self) -> int:
        return self._clock()

    def seconds(self) -> float:
        return self._clock() / 1e9

    def identity_tags(self, count: int = 1) -> list[tuple[str, str]]:
        """``count`` fresh (etag, generationId) pairs; call inside the write transaction."""
        now_ns = self._clock()
        out = []
        for _ in range(count):
            self._etag_counter += 1
            generation, self._last_ticks = generation_id(now_ns, self._last_ticks)
            out.append((etag_text(self._etag_counter), generation))
        self.store.set_meta("etag_counter", str(self._etag_counter))
        return out

    def next_etag(self) -> str:
        return self.identity_tags()[0][0]

    # -- lookups that raise what REST answers -------------------------------------------

    def device(self, device_id: str) -> dict[str, Any]:
        device = self.store.get_device(device_id)
        if device is None:
            raise device_not_found(device_id)
        return device

    def module(self, device_id: str, module_id: str) -> dict[str, Any]:
        module = self.store.get_module(device_id, module_id)
        if module is None:
            self.device(device_id)
            raise module_not_found(device_id, module_id)
        return module

    def not_found(self, device_id: str, module_id: str | None) -> HubError:
        if module_id and self.store.get_device(device_id) is not None:
            return module_not_found(device_id, module_id)
        return device_not_found(device_id)

    # -- listeners ----------------------------------------------------------------------

    def on_desired_patch(self, callback: DesiredListener) -> None:
        """``callback(device_id, module_id, body_with_version)`` after each desired change."""
        self._desired_listeners.append(callback)

    def on_identity_removed(self, callback: RemovedListener) -> None:
        """``callback(device_id, module_id, reason)`` when live connections must be dropped.

        ``module_id`` None means the device and all its modules.
        """
        self._removed_listeners.append(callback)

    def on_twin_written(self, callback: TwinListener) -> None:
        """``callback(device_id, module_id)`` after a twin or its identity was created or
        changed (what a configuration's target condition reads may have changed)."""
        self._twin_listeners.append(callback)

    def emit_twin_written(self, device_id: str, module_id: str | None) -> None:
        _call_all(self._twin_listeners, device_id, module_id)

    def emit_desired(self, device_id: str, module_id: str | None, body: dict) -> None:
        _call_all(self._desired_listeners, device_id, module_id, body)

    def emit_removed(self, device_id: str, module_id: str | None, reason: RemovalReason) -> None:
        _call_all(self._removed_listeners, device_id, module_id, reason)

    def set_connected(
        self, device_id: str, module_id: str | None, connected: bool, when: str
    ) -> None:
        """connectionState, and lastActivityTime written with it."""
        key = (device_id, module_id or "")
        pending = self._pending_activity.pop(key, None)
        activity = when if connected else pending
        state = "Connected" if connected else "Disconnected"
        # Not fsynced: a restarted hub marks everyone Disconnected anyway.
        with self.store.transaction(durable=False):
            self.store.set_connection(device_id, module_id or "", state, when, activity)

    # -- write-behind activity ----------------------------------------------------------

    def touch(self, device_id: str, module_id: str | None, now: str | None = None) -> None:
        """Note traffic from an identity: lastActivityTime, written behind.

        Kept in memory and written in batches at most every ACTIVITY_FLUSH_SECONDS (and
        before any read), without fsync: telemetry at hundreds of messages per second
        must not cost a disk sync per message.
        """
        self._pending_activity[(device_id, module_id or "")] = now or self.now()
        if time.monotonic() - self._last_flush >= ACTIVITY_FLUSH_SECONDS:
            self.flush_activity()

    def flush(self) -> None:
        """Write pending activity now (the shells may call this on a timer)."""
        self.flush_activity()

    def flush_activity(self) -> None:
        """Write pending lastActivityTime values in one transaction without fsync.

        Losing them in a crash costs a slightly older lastActivityTime, nothing more.
        """
        self._last_flush = time.monotonic()
        if not self._pending_activity:
            return
        items = [(d, m, when) for (d, m), when in self._pending_activity.items()]
        self._pending_activity.clear()
        try:
            with self.store.transaction(durable=False):
                self.store.set_activity(items)
        except DiskFull:
            pass  # best effort (the store said so once): a full disk must not fail a read

    def drop_activity(self, device_id: str, module_id: str | None) -> None:
        for key in [k for k in self._pending_activity if k[0] == device_id]:
            if module_id is None or key[1] == module_id:
                del self._pending_activity[key]
