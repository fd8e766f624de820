"""Twin watching, without Qt: poll watched twins by etag and publish what changed.

The watched twins are the selected one (while "watch selected" is on) and any the user
pins. Each has one asyncio task: wait until due, take a slot from the pacer, GET the
twin through the service (its thread pool; never the loop), compare the etag. When it
moved, the new twin goes into the history and each section that changed (tags, desired,
reported, without ``$metadata``/``$version``) becomes an OBSERVED ``PatchEvent``.

Never more than one poll per twin in flight, and at most ``max_in_flight`` in all.
The pacer spaces poll starts ``interval / n`` apart (n = twins watched), so 20 pinned
twins at 2 s mean one GET every 100 ms, not 20 at once. A failing poll backs off
exponentially (with jitter) up to ``max_backoff``; the status says so in plain words.

The app's own patches are not reported again as observed: SENT and REPORTED events on
the stream are remembered per twin and, when a poll sees the change, subtracted from it
(by section ``$version`` when the event has one, else by content: a patch is "in" the
new twin when applying it again would change nothing). Only what is left is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from twin_explorer.service.errors import NotFound, ServiceError, Unreachable
from twin_explorer.service.history import TwinHistory, TwinVersion, apply_event
from twin_explorer.service.models import Twin
from twin_explorer.twin.diff import make_patch
from twin_explorer.twin.events import Direction, PatchEvent, PatchStream, Section
from twin_explorer.twin.identity import identity_path
from twin_explorer.twin.merge import is_noop, merge_patch

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
MIN_INTERVAL = 0.2
DEFAULT_MAX_BACKOFF = 60.0
DEFAULT_MAX_IN_FLIGHT = 2  # the service pool has 4 workers; leave room for the user
MIN_SPACING = 0.02
OWN_PATCH_TTL = 300.0  # seconds an unmatched own patch is remembered
OWN_PATCHES_KEPT = 200
SOURCE = "watch"
_SECTIONS = (Section.TAGS, Section.DESIRED, Section.REPORTED)


class TwinReader(Protocol):
    """What the watcher needs of ``HubService``."""

    @property
    def host(self) -> str: ...

    async def get_twin(self, device_id: str, module_id: str | None = None) -> Twin: ...


@dataclass(frozen=True)
class WatchStatus:
    identity: str
    state: Literal["watching", "retrying"] = "watching"
    failures: int = 0
    retry_in: float | None = None  # seconds until the next try, when retrying
    error: str | None = None  # plain words from the last failure
    unreachable: bool = False
    polls: int = 0
    changes: int = 0

    @property
    def text(self) -> str:
        if self.state == "watching":
            return f"{self.identity}: watching"
        wait = f" — retrying in {self.retry_in:.0f} s" if self.retry_in is not None else ""
        what = "hub unreachable" if self.unreachable else (self.error or "failed")
        return f"{self.identity}: {what}{wait}"


@dataclass(eq=False)
class _Own:
    """A patch this app made, waiting to be seen by a poll."""

    event_id: int
    section: Section
    body: dict[str, Any]
    version: int | None
    at: float


@dataclass(eq=False)
class _Watch:
    device_id: str
    module_id: str | None
    status: WatchStatus
    task: asyncio.Task[None] | None = None
    last: dict[str, Any] | None = None
    last_version: TwinVersion | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    poll_now: bool = False

    @property
    def identity(self) -> str:
        return identity_path(self.device_id, self.module_id)


def section_of(twin: dict[str, Any], section: Section) -> dict[str, Any]:
    """A section's properties, without ``$metadata`` and ``$version``."""
    if section is Section.TAGS:
        value = twin.get("tags")
    else:
        value = (twin.get("properties") or {}).get(section.value)
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k not in ("$metadata", "$version")}


def section_version(twin: dict[str, Any], section: Section) -> int | None:
    if section is Section.TAGS:
        return None  # tags have no version of their own
    value = ((twin.get("properties") or {}).get(section.value) or {}).get("$version")
    return value if isinstance(value, int) else None


def own_parts(event: PatchEvent) -> list[tuple[Section, dict[str, Any], int | None]]:
    """The per-section patches of an event this app sent or reported."""
    body = event.body
    if event.section is Section.TWIN:
        parts: list[tuple[Section, dict[str, Any], int | None]] = []
        if isinstance(body.get("tags"), dict):
            parts.append((Section.TAGS, body["tags"], None))
        for name, patch in (body.get("properties") or {}).items():
            if name in ("desired", "reported") and isinstance(patch, dict):
                parts.append((Section(name), patch, None))  # whose $version? match by content
        return parts
    version = None if event.section is Section.TAGS else event.version
    return [(event.section, body, version)]


def _root_version(twin: dict[str, Any]) -> int:
    """The twin's root ``version`` (moves on every change); -1 when unknown."""
    value = twin.get("version")
    return value if isinstance(value, int) else -1


def _inferred(last: dict[str, Any] | None, event: PatchEvent) -> dict[str, Any] | None:
    """The twin a reported patch made, inferred from the last twin seen. Only the module
    itself writes its reported properties, so its next patch is ``$version`` + 1 (the
    device SDK does not say which version the hub answered; when a producer does, it
    must agree). None when that cannot be known."""
    if last is None or event.section is not Section.REPORTED:
        return None
    root, before = _root_version(last), section_version(last, Section.REPORTED)
    if root < 0 or before is None or event.version not in (None, before + 1):
        return None
    twin = apply_event(last, event)
    twin["properties"]["reported"]["$version"] = before + 1
    twin["version"] = root + 1  # a poll that sees this root version sees this twin
    twin["etag"] = ""  # unknown until a poll sees the twin whole
    return twin


class TwinWatcher:
    def __init__(
        self,
        stream: PatchStream,
        history: TwinHistory | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        min_spacing: float = MIN_SPACING,
    ) -> None:
        self.stream = stream
        self.history = history if history is not None else TwinHistory()
        self._interval = max(MIN_INTERVAL, interval)
        self.max_backoff = max_backoff
        self.min_spacing = min_spacing
        self._gate = asyncio.Semaphore(max_in_flight)
        self._service: TwinReader | None = None
        self._host: str | None = None
        self._selected: tuple[str, str | None] | None = None
        self._watch_selected = True
        self._notified = False
        self._pinned: dict[str, tuple[str, str | None]] = {}
        self._watches: dict[str, _Watch] = {}
        self._own: dict[str, deque[_Own]] = {}
        self._last_slot = -1e9
        self._listeners: list[Callable[[WatchStatus | None], None]] = []
        self._unsubscribe = stream.subscribe(self._on_event)
        self.poll_starts: deque[float] = deque(maxlen=1000)  # monotonic times, for checks

    # -- configuration -----------------------------------------------------------------

    @property
    def service(self) -> TwinReader | None:
        return self._service

    def set_service(self, service: TwinReader | None) -> None:
        """Watch through another hub connection (None: stop). A different hub starts a
        new history; the same hub reconnected keeps it, and changes made meanwhile show."""
        if service is self._service:
            return
        self._stop_all()
        host = service.host if service is not None else None
        if host is not None and host != self._host:
            if self._host is not None:
                self.history.clear()
                self._own.clear()
            self._host = host
        self._service = service
        self._sync()

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        self._interval = max(MIN_INTERVAL, float(seconds))
        for watch in self._watches.values():
            watch.wake.set()  # recompute when due

    @property
    def notified(self) -> bool:
        """Twin change notifications flow from the hub's event stream: no polling."""
        return self._notified

    @notified.setter
    def notified(self, on: bool) -> None:
        if bool(on) != self._notified:
            self._notified = bool(on)
            for watch in self._watches.values():
                watch.wake.set()  # recompute when due: never, or the interval again
            self._notify(None)

    @property
    def watch_selected(self) -> bool:
        return self._watch_selected

    @watch_selected.setter
    def watch_selected(self, on: bool) -> None:
        self._watch_selected = bool(on)
        self._sync()

    def select(self, device_id: str | None, module_id: str | None = None) -> None:
        """The twin selected in the tree (None: nothing selected)."""
        self._selected = (device_id, module_id) if device_id else None
        self._sync()

    def pin(self, device_id: str, module_id: str | None = None) -> None:
        self._pinned[identity_path(device_id, module_id)] = (device_id, module_id)
        self._sync()

    def unpin(self, device_id: str, module_id: str | None = None) -> None:
        self._pinned.pop(identity_path(device_id, module_id), None)
        self._sync()

    def is_pinned(self, device_id: str, module_id: str | None = None) -> bool:
        return identity_path(device_id, module_id) in self._pinned

    @property
    def pinned(self) -> list[str]:
        return sorted(self._pinned)

    def watched(self) -> list[str]:
        """Identities being polled now."""
        return sorted(self._watches)

    def poll_soon(self, identity: str) -> None:
        watch = self._watches.get(identity)
        if watch is not None:
            watch.poll_now = True
            watch.wake.set()

    # -- status ------------------------------------------------------------------------

    def status(self, identity: str) -> WatchStatus | None:
        watch = self._watches.get(identity)
        return watch.status if watch else None

    def statuses(self) -> list[WatchStatus]:
        return [self._watches[key].status for key in sorted(self._watches)]

    def subscribe(self, listener: Callable[[WatchStatus | None], None]) -> Callable[[], None]:
        """Be told when a twin's status changes (None: the set of watched twins changed)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def summary(self) -> str:
        """One line for a status bar."""
        statuses = self.statuses()
        if not statuses:
            return "Not watching any twin"
        failing = [s for s in statuses if s.state == "retrying"]
        every = f"every {self._interval:g} s"
        if not failing:
            what = statuses[0].identity if len(statuses) == 1 else f"{len(statuses)} twins"
            if self._notified:
                return f"Watching {what} {every} — live from the hub's events, no polling"
            return f"Watching {what} {every}"
        if all(s.unreachable for s in failing) and len(failing) == len(statuses):
            soonest = min((s.retry_in or 0.0) for s in failing)
            return f"Hub unreachable — retrying in {soonest:.0f} s"
        if len(failing) == 1:
            return failing[0].text
        return f"Watching {len(statuses)} twins {every}; {len(failing)} failing"

    def _set_status(self, watch: _Watch, status: WatchStatus) -> None:
        watch.status = status
        self._notify(status)

    def _notify(self, status: WatchStatus | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("watch status listener failed")

    # -- lifetime ----------------------------------------------------------------------

    async def aclose(self) -> None:
        self._unsubscribe()
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        self._stop_all()
        self._service = None
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _wanted(self) -> dict[str, tuple[str, str | None]]:
        if self._service is None:
            return {}
        wanted = dict(self._pinned)
        if self._watch_selected and self._selected is not None:
            wanted.setdefault(identity_path(*self._selected), self._selected)
        return wanted

    def _sync(self) -> None:
        wanted = self._wanted()
        changed = False
        for key in [key for key in self._watches if key not in wanted]:
            self._stop(self._watches.pop(key))
            changed = True
        for key, (device_id, module_id) in wanted.items():
            if key not in self._watches:
                watch = _Watch(device_id, module_id, WatchStatus(key))
                self._watches[key] = watch
                self._start(watch)
                changed = True
        if changed:
            self._notify(None)

    def _start(self, watch: _Watch) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop yet: nothing can poll; the next change retries
            return
        latest = self.history.latest(watch.identity)
        if latest is not None:  # watched before: changes made meanwhile are news
            watch.last, watch.last_version = latest.twin, latest
        watch.task = asyncio.ensure_future(self._run(watch))
        watch.task.set_name(f"watch {watch.identity}")

    def _stop(self, watch: _Watch) -> None:
        if watch.task is not None:
            watch.task.cancel()
            watch.task = None

    def _stop_all(self) -> None:
        for watch in self._watches.values():
            self._stop(watch)
        had = bool(self._watches)
        self._watches.clear()
        if had:
            self._notify(None)

    # -- polling -----------------------------------------------------------------------

    async def _run(self, watch: _Watch) -> None:
        service = self._service
        while service is not None and service is self._service:
            started = await self._pace()
            async with self._gate:
                ok = await self._poll(service, watch)
            if ok:
                await self._wait(watch, lambda started=started: started + self._interval)
            else:
                delay = self._backoff(watch.status.failures)
                self._set_status(watch, replace(watch.status, retry_in=delay))
                until = time.monotonic() + delay
                await self._wait(watch, lambda until=until: until)

    async def _pace(self) -> float:
        """Take the next free start slot; starts are ``interval / n`` apart."""
        # Spacing from the current interval and twin count, so neither change waits out
        # a gap reserved under the old ones.
        now = time.monotonic()
        spacing = max(self.min_spacing, self._interval / max(1, len(self._watches)))
        slot = max(now, self._last_slot + spacing)
        self._last_slot = slot
        if slot > now:
            await asyncio.sleep(slot - now)
        return slot

    async def _wait(self, watch: _Watch, due: Callable[[], float]) -> None:
        """Sleep until ``due()`` (re-read when woken, as the interval may change) or until
        someone asks for a poll now."""
        while not watch.poll_now:
            # While change notifications flow, a twin is read only when one says it moved.
            remaining = None if self._notified else due() - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            watch.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await watch.wake.wait()
        watch.poll_now = False

    def _backoff(self, failures: int) -> float:
        base = min(self.max_backoff, self._interval * 2 ** min(failures, 16))
        return base * random.uniform(0.85, 1.0)  # jitter: twins do not retry in lockstep

    async def _poll(self, service: TwinReader, watch: _Watch) -> bool:
        self.poll_starts.append(time.monotonic())
        status = watch.status
        try:
            twin = await service.get_twin(watch.device_id, watch.module_id)
        except Exception as exc:  # a ServiceError, or a bug: either way keep watching
            if isinstance(exc, NotFound):
                text = "twin not found"
            elif isinstance(exc, ServiceError):
                text = exc.message
            else:
                log.exception("polling %s failed", watch.identity)
                text = f"unexpected error: {exc}"
            self._set_status(
                watch,
                WatchStatus(
                    watch.identity,
                    "retrying",
                    failures=status.failures + 1,
                    error=text,
                    unreachable=isinstance(exc, Unreachable),
                    polls=status.polls + 1,
                    changes=status.changes,
                ),
            )
            return False
        if service is not self._service or self._watches.get(watch.identity) is not watch:
            return True  # stopped meanwhile: the answer is for nobody
        changes = self._seen(watch, twin.doc)
        fresh = WatchStatus(
            watch.identity, polls=status.polls + 1, changes=status.changes + changes
        )
        if fresh.state != status.state or status.failures or changes:
            self._set_status(watch, fresh)
        else:
            watch.status = fresh
        return True

    # -- comparing ---------------------------------------------------------------------

    def _seen(self, watch: _Watch, doc: dict[str, Any], *, provisional: bool = False) -> int:
        """Record a polled (or produced) twin; publish what changed since the last one.
        Returns the number of events published."""
        previous, before = watch.last, watch.last_version
        same_etag = previous is not None and previous.get("etag") == doc.get("etag")
        if same_etag and not provisional:  # (inferred twins have no etag yet)
            self._expire(watch.identity)
            return 0
        if previous is not None and 0 <= _root_version(doc) <= _root_version(previous):
            if before is not None and before.provisional and not provisional:
                # The inferred twin, now seen whole: it takes its place, no new version.
                confirmed = self.history.confirm(doc)
                watch.last, watch.last_version = doc, confirmed or before
            return 0  # else older than what we have: a poll that started before a save
        after = self.history.record(doc, provisional=provisional)
        after = after or self.history.latest(watch.identity)
        assert after is not None
        watch.last, watch.last_version = doc, after
        if previous is None:  # the first look: a baseline; own patches in it are done
            self._reconcile(watch.identity, None, doc, before, after)
            return 0
        return self._reconcile(watch.identity, previous, doc, before, after)

    def _reconcile(
        self,
        identity: str,
        previous: dict[str, Any] | None,
        doc: dict[str, Any],
        before: TwinVersion | None,
        after: TwinVersion,
    ) -> int:
        published = 0
        own = self._own.get(identity, deque())
        for section in _SECTIONS:
            new = section_of(doc, section)
            new_version = section_version(doc, section)
            old_version = section_version(previous, section) if previous is not None else None
            expected = section_of(previous, section) if previous is not None else None
            mine: list[_Own] = []
            for patch in own:
                if patch.section is not section:
                    continue
                if patch.version is not None and new_version is not None:
                    if patch.version > new_version:
                        continue  # not in this twin yet
                    mine.append(patch)
                    if old_version is not None and patch.version <= old_version:
                        continue  # was in the last one already
                elif is_noop(new, patch.body):
                    mine.append(patch)
                else:
                    continue
                if expected is not None:
                    expected = merge_patch(expected, patch.body)
            for patch in mine:
                own.remove(patch)
                if previous is not None:
                    self.history.link(patch.event_id, before, after)
            if expected is None:
                continue
            remainder = make_patch(expected, new)
            if not remainder:
                continue
            device_id, module_id = doc["deviceId"], doc.get("moduleId")
            event = PatchEvent(
                device_id,
                module_id,
                Direction.OBSERVED,
                section,
                remainder,
                version=new_version,
                source=SOURCE,
            )
            self.history.link(event.id, before, after)
            if not self._notified:  # (else the notification put it in the log already)
                self.stream.publish(event)
                published += 1
        self._expire(identity)
        return published

    def _on_event(self, event: PatchEvent) -> None:
        """Remember this app's own patches on twins we watch or have seen. The twin a
        patch produced goes into a watched twin's history at once (inferred from the
        last one when only the reported ``$version`` is known); a poll confirms it."""
        if event.direction not in (Direction.SENT, Direction.REPORTED) or not event.changes_twin:
            return
        identity = event.identity
        watch = self._watches.get(identity)
        if watch is None and self.history.latest(identity) is None:
            return
        own = self._own.setdefault(identity, deque(maxlen=OWN_PATCHES_KEPT))
        now = time.monotonic()
        for section, body, version in own_parts(event):
            own.append(_Own(event.id, section, body, version, now))
        if watch is not None and event.twin is not None:
            self._seen(watch, event.twin)
            return
        inferred = _inferred(watch.last, event) if watch is not None else None
        if watch is not None and inferred is not None:
            self._seen(watch, inferred, provisional=True)
        self.poll_soon(identity)  # see it (and link it to the history) soon

    def _expire(self, identity: str) -> None:
        own = self._own.get(identity)
        if not own:
            return
        horizon = time.monotonic() - OWN_PATCH_TTL
        while own and own[0].at < horizon:
            own.popleft()
