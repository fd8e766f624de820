"""A bulk run: preview every chosen twin, then apply with bounded concurrency.

Every write is a PATCH guarded by the etag the preview read. A 412 means the twin moved
on: it is re-read and re-diffed (``preview.recheck``). When every place the change writes
still holds what the preview read, the same patch goes again with the new etag (reported
properties or other keys moving do not matter); when another writer changed one of
those places, nothing is written and the twin is a conflict, listed for a decision.
429s pause every writer (``Throttle``). Each outcome is appended to the run's folder as
it happens, so a cancelled, crashed or killed run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from twin_explorer.service import errors
from twin_explorer.service.bulk.change import BulkChange
from twin_explorer.service.bulk.choose import ReadService, TwinSelection, count, pages
from twin_explorer.service.bulk.preview import (
    Plan,
    PreviewItem,
    Recheck,
    limit_broken,
    preview_twin,
    recheck,
    revert_item,
)
from twin_explorer.service.bulk.store import RunFolder
from twin_explorer.service.bulk.throttle import Throttle
from twin_explorer.service.edit_text import editable_part
from twin_explorer.service.models import Twin
from twin_explorer.twin import merge_patch
from twin_explorer.twin.clock import utc_now
from twin_explorer.twin.events import Direction, PatchEvent, Section
from twin_explorer.twin.identity import identity_path

SOURCE = "bulk"
DEFAULT_CONCURRENCY = 8
MAX_RETRIES = 5  # re-reads after a 412 before a twin that keeps moving is a conflict
MAX_THROTTLED = 50  # 429s for one twin before it counts as failed
RATE_WINDOW = 5.0  # seconds of writes the rate is measured over
PREVIEW_SLICE = 25  # twins previewed between yields to the event loop


def settle_heap() -> None:
    """Take what the app holds now out of the cycle collector's full passes.

    A preview and a run make many short-lived objects, and each few thousand of them
    trigger a full collection that walks the whole heap: Qt's wrappers, the SDKs'
    modules, a 100,000-twin run's items. On a desktop app's heap that is 50-80 ms with
    the loop stopped, the one stall left in a bulk run. What exists when a run starts
    (or a preview's items, once built) lives as long as the run, so it is frozen
    (``gc.freeze``): still freed by reference counting, never walked again. Only
    reference cycles among them would outlive the run, which those long-lived objects
    do not make.
    """
    gc.freeze()


class Outcome(StrEnum):
    APPLIED = "applied"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    CONFLICT = "conflict"
    FAILED = "failed"


class RunState(StrEnum):
    PREVIEWED = "previewed"
    RUNNING = "running"
    CANCELLED = "cancelled"
    FINISHED = "finished"


class WriteService(ReadService, Protocol):
    async def patch_twin(
        self, device_id: str, module_id: str | None, patch: dict[str, Any], etag: str | None
    ) -> Twin: ...


@dataclass(frozen=True, slots=True)
class Result:
    device_id: str
    module_id: str | None
    outcome: Outcome
    detail: str = ""
    etag: str = ""  # the twin's etag after the write (what a revert is guarded by)
    time: str = field(default_factory=utc_now)

    @property
    def identity(self) -> str:
        return identity_path(self.device_id, self.module_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "moduleId": self.module_id,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "etag": self.etag,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Result:
        return cls(
            doc["deviceId"],
            doc.get("moduleId"),
            Outcome(doc["outcome"]),
            doc.get("detail") or "",
            doc.get("etag") or "",
            doc.get("time") or "",
        )


@dataclass(frozen=True)
class Progress:
    total: int  # twins in the run
    done: int  # twins with an outcome
    counts: dict[Outcome, int]
    rate: float  # twins per second, over the last few seconds
    state: RunState
    throttled: int = 0  # 429s met

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None before there is a rate)."""
        if not self.remaining:
            return 0.0
        return self.remaining / self.rate if self.rate > 0 else None

    def text(self) -> str:
        parts = [f"{self.done:,} of {self.total:,} twins"]
        if self.rate:
            parts.append(f"{self.rate:,.0f}/s")
        eta = self.eta
        if eta and self.state is RunState.RUNNING:
            parts.append(f"about {_duration(eta)} left")
        counts = ", ".join(f"{n:,} {o.value}" for o, n in self.counts.items() if n)
        if counts:
            parts.append(counts)
        if self.throttled:
            parts.append(f"throttled {self.throttled:,}×")
        return " · ".join(parts)


class BulkRun:
    """One run's preview, state and results, kept in its ``RunFolder``."""

    def __init__(
        self, folder: RunFolder, plan: dict[str, Any], items: list[PreviewItem],
        results: dict[tuple[str, str | None], Result] | None = None,
    ) -> None:  # fmt: skip
        self.folder = folder
        self.plan = plan
        self.items = items
        self.results = results or {}
        # Counts kept as outcomes arrive: a window reads them often, on any size of run.
        self._plans = {item.key: item.plan.value for item in items}
        self._statuses: collections.Counter[str] = collections.Counter(self._plans.values())
        self._outcomes: collections.Counter[Outcome] = collections.Counter()
        for key, result in self.results.items():
            self._count(key, None, result)
        self.throttle = Throttle()
        self._cancel = asyncio.Event()
        self._done_times: collections.deque[float] = collections.deque()

    # -- making and loading -------------------------------------------------------------

    @classmethod
    async def preview(
        cls,
        service: ReadService,
        selection: TwinSelection,
        change: BulkChange,
        *,
        hub: str = "",
        root: Path | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        total: int | None = None,
    ) -> BulkRun:
        """Count, read and preview every chosen twin; kept on disk before returning."""
        settle_heap()
        if total is None:
            total = await count(service, selection)
        items: list[PreviewItem] = []
        seen: set[tuple[str, str | None]] = set()
        async for page in pages(service, selection):
            for start in range(0, len(page), PREVIEW_SLICE):
                for twin in page[start : start + PREVIEW_SLICE]:
                    item = _preview_one(twin, change)
                    if item.key not in seen:  # a page boundary moving under a writer
                        seen.add(item.key)
                        items.append(item)
                await asyncio.sleep(0)  # the loop stays responsive on big pages
            if on_progress is not None:
                on_progress(len(items), max(total, len(items)))
        plan = {
            "kind": "change",
            "hub": hub,
            "selection": selection.to_json(),
            "change": change.to_json(),
            "counted": total,
            "created": utc_now(),
        }
        settle_heap()  # the items live as long as the run
        # Writing a big preview to disk takes a while: off the loop.
        return await asyncio.to_thread(cls._create, plan, items, root)

    @classmethod
    def _create(cls, plan: dict[str, Any], items: list[PreviewItem], root: Path | None):
        folder = RunFolder.create(root)
        plan = {"id": folder.id, "state": RunState.PREVIEWED.value, **plan}
        folder.write_items(item.to_json() for item in items)
        folder.write_plan(plan)
        return cls(folder, plan, items)

    @classmethod
    def load(cls, path: Path) -> BulkRun:
        folder = RunFolder(path)
        items = [PreviewItem.from_json(doc) for doc in folder.read_items()]
        results = {}
        for doc in folder.read_results():
            result = Result.from_json(doc)
            results[(result.device_id, result.module_id)] = result
        return cls(folder, folder.read_plan(), items, results)

    def revert(self, root: Path | None = None) -> BulkRun:
        """A new run putting back, twin by twin, what this run applied (each write guarded
        by the etag this run's write left; a twin changed since is re-diffed as usual)."""
        items = []
        for item in self.items:
            result = self.results.get(item.key)
            if result is not None and result.outcome is Outcome.APPLIED and item.touches:
                items.append(revert_item(item, result.etag))
        plan = {
            "kind": "revert",
            "hub": self.plan.get("hub", ""),
            "reverts": self.id,
            "selection": TwinSelection.of([i.key for i in items]).to_json() if items else {},
            "change": {},
            "counted": len(items),
            "created": utc_now(),
        }
        return BulkRun._create(plan, items, root or self.folder.path.parent)

    # -- what it holds ------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.folder.id

    @property
    def state(self) -> RunState:
        return RunState(self.plan.get("state", RunState.PREVIEWED.value))

    @property
    def kind(self) -> str:
        return self.plan.get("kind", "change")

    def plan_counts(self) -> dict[Plan, int]:
        counts = dict.fromkeys(Plan, 0)
        for item in self.items:
            counts[item.plan] += 1
        return counts

    def pending(self) -> list[PreviewItem]:
        return [i for i in self.items if i.plan is Plan.CHANGE and i.key not in self.results]

    def status_counts(self) -> dict[str, int]:
        """Twins per status: the outcome where there is one, else the preview's plan."""
        return dict(self._statuses)

    def progress(self) -> Progress:
        counts = {outcome: self._outcomes[outcome] for outcome in Outcome}
        now = time.monotonic()
        times = self._done_times
        while times and times[0] < now - RATE_WINDOW:
            times.popleft()
        span = now - times[0] if len(times) > 1 else 0.0
        rate = (len(times) - 1) / span if span > 0 else 0.0
        return Progress(
            len(self.items), len(self.results), counts, rate, self.state, self.throttle.hits
        )

    def report(self) -> list[dict[str, Any]]:
        """One row per twin: identity, outcome (or the plan, for a run not applied yet),
        what changes and why."""
        rows = []
        for item in self.items:
            result = self.results.get(item.key)
            rows.append(
                {
                    "identity": item.identity,
                    "deviceId": item.device_id,
                    "moduleId": item.module_id,
                    "outcome": result.outcome.value if result else f"planned: {item.plan.value}",
                    "change": item.summary() if item.plan is Plan.CHANGE else "",
                    "detail": result.detail if result else item.reason,
                    "etagBefore": item.etag,
                    "etagAfter": result.etag if result else "",
                    "patch": item.patch,
                }
            )
        return rows

    # -- applying -----------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop after the writes in flight; the rest stays to do (``apply`` resumes)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    async def apply(
        self,
        service: WriteService,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        publish: Callable[[PatchEvent], None] | None = None,
    ) -> Progress:
        """Write every twin still to do; returns when all are done or on ``cancel``."""
        settle_heap()
        self._cancel.clear()
        self._set_state(RunState.RUNNING)
        for item in self.items:  # skipped and blocked twins get their outcome at once
            if item.plan is not Plan.CHANGE and item.key not in self.results:
                outcome = Outcome.SKIPPED if item.plan is Plan.SKIPPED else Outcome.BLOCKED
                self._record(Result(item.device_id, item.module_id, outcome, item.reason))
        todo = collections.deque(self.pending())

        async def worker() -> None:
            while todo and not self._cancel.is_set():
                item = todo.popleft()
                result = await self._write(service, item, publish)
                if result is None:  # cancelled while throttled: still to do
                    return
                self._record(result)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(max(1, min(concurrency, len(todo)))):
                    group.create_task(worker())
        finally:
            self.folder.close()
            finished = not self.pending()
            self._set_state(RunState.FINISHED if finished else RunState.CANCELLED)
        return self.progress()

    async def _write(
        self,
        service: WriteService,
        item: PreviewItem,
        publish: Callable[[PatchEvent], None] | None,
    ) -> Result | None:
        d, m = item.device_id, item.module_id
        etag, rereads, throttled = item.etag, 0, 0
        while True:
            await self.throttle.wait()
            if self._cancel.is_set() and throttled:
                return None
            try:
                twin = await service.patch_twin(d, m, item.patch, etag)
            except errors.PreconditionFailed:
                rereads += 1
                try:
                    current = await service.get_twin(d, m)
                except errors.NotFound:
                    return Result(d, m, Outcome.FAILED, "The twin is no longer on the hub.")
                except errors.Throttled as exc:
                    throttled += 1
                    self.throttle.hit(exc.retry_after)
                    continue
                verdict, moved = recheck(item, current.doc)
                if verdict is Recheck.CONFLICT:
                    where = ", ".join(".".join(p) for p in moved[:3])
                    return Result(
                        d, m, Outcome.CONFLICT,
                        f"Changed by someone else since the preview ({where}); not written.",
                        current.etag,
                    )  # fmt: skip
                if verdict is Recheck.ALREADY:
                    return Result(
                        d, m, Outcome.APPLIED, "Already on the hub when re-read.", current.etag
                    )
                reason = limit_broken(merge_patch(editable_part(current.doc), item.patch))
                if reason:
                    return Result(d, m, Outcome.BLOCKED, reason, current.etag)
                if rereads > MAX_RETRIES:
                    return Result(
                        d, m, Outcome.CONFLICT, "The twin kept changing; not written.", etag
                    )
                etag = current.etag
                continue
            except errors.Throttled as exc:
                throttled += 1
                self.throttle.hit(exc.retry_after)
                if throttled > MAX_THROTTLED:
                    return Result(d, m, Outcome.FAILED, str(exc))
                continue
            except errors.NotFound:
                return Result(d, m, Outcome.FAILED, "The twin is no longer on the hub.")
            except errors.ServiceError as exc:
                return Result(d, m, Outcome.FAILED, str(exc))
            self.throttle.ok()
            if publish is not None:
                publish(sent_event(d, m, item.patch, twin, f"{SOURCE}:{self.id}"))
            detail = "Re-read after a newer etag; still applied cleanly." if rereads else ""
            return Result(d, m, Outcome.APPLIED, detail, twin.etag)

    def _count(self, key: tuple[str, str | None], old: Result | None, new: Result) -> None:
        before = old.outcome.value if old is not None else self._plans.get(key)
        if before is not None:
            self._statuses[before] -= 1
        if old is not None:
            self._outcomes[old.outcome] -= 1
        self._statuses[new.outcome.value] += 1
        self._outcomes[new.outcome] += 1

    def _record(self, result: Result) -> None:
        key = (result.device_id, result.module_id)
        self._count(key, self.results.get(key), result)
        self.results[key] = result
        self.folder.append_result(result.to_json())
        self._done_times.append(time.monotonic())

    def _set_state(self, state: RunState) -> None:
        self.plan["state"] = state.value
        self.folder.write_plan(self.plan)


def _preview_one(twin: dict[str, Any], change: BulkChange) -> PreviewItem:
    if twin.get("missing"):
        return PreviewItem(
            twin["deviceId"], twin.get("moduleId"), Plan.BLOCKED,
            reason="The twin is no longer on the hub.",
        )  # fmt: skip
    return preview_twin(twin, change.patch)


def sent_event(
    device_id: str, module_id: str | None, body: dict[str, Any], twin: Twin, source: str
) -> PatchEvent:
    """The patch stream's record of one PATCH this app sent."""
    desired = (body.get("properties") or {}).get("desired")
    tags = body.get("tags")
    if desired is not None and tags is not None:
        section, event_body = Section.TWIN, body
    elif desired is not None:
        section, event_body = Section.DESIRED, desired
    else:
        section, event_body = Section.TAGS, tags or {}
    version = twin.doc.get("version")
    if section is Section.DESIRED:
        version = ((twin.doc.get("properties") or {}).get("desired") or {}).get("$version")
    return PatchEvent(
        device_id=device_id,
        module_id=module_id,
        direction=Direction.SENT,
        section=section,
        body=event_body,
        version=version if isinstance(version, int) else None,
        source=source,
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
