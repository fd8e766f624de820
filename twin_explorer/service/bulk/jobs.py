"""IoT Hub's own scheduled twin-update job, for very large sets.

The request is built from the same selection and change as a per-twin run, so both
paths take the same input; ``start_job`` sends it, ``follow_job`` polls the job's status
and statistics until it ends, and ``HubService.cancel_job`` cancels it.

What a job cannot do, and a per-twin run does (say so wherever the option is offered):

* no per-twin etag: the job writes with ``etag: "*"``, over whatever is there;
* no preview of conflicts or of what is already so: the hub decides at run time;
* device twins only: a job's query condition selects devices, never modules;
* no revert from a report: the job reports success per device, not what it replaced.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from twin_explorer.service.bulk.change import BulkChange
from twin_explorer.service.bulk.choose import TwinSelection

JOB_TYPE = "scheduleUpdateTwin"
DEFAULT_MAX_SECONDS = 3600
ENDED = frozenset({"completed", "failed", "cancelled"})
POLL_SECONDS = 1.0  # how often a running job's status is read
# What a job cannot do, in the words the window and the command show.
LIMITS = (
    "An IoT Hub job writes every device twin chosen above, on the hub's own schedule. "
    "It cannot do what Apply does: no per-twin etag (it writes over whatever "
    "is there), no preview of conflicts or of twins already so, device twins only (no "
    "module twins), and no revert from its report."
)


class JobService(Protocol):
    async def start_job(self, request: dict[str, Any]) -> dict[str, Any]: ...
    async def get_job(self, job_id: str) -> dict[str, Any]: ...


_WHERE = re.compile(r"^\s*SELECT\s+\*\s+FROM\s+devices\s*(?:WHERE\s+(?P<cond>.*))?$", re.I | re.S)


class JobUnsuitable(ValueError):
    """This selection cannot become a job (said in plain words)."""


def job_request(
    job_id: str,
    selection: TwinSelection,
    change: BulkChange,
    start_time: str,
    max_seconds: int = DEFAULT_MAX_SECONDS,
) -> dict[str, Any]:
    """The body of ``PUT /jobs/v2/{job_id}`` that applies ``change`` to ``selection``."""
    return {
        "jobId": job_id,
        "type": JOB_TYPE,
        "queryCondition": query_condition(selection),
        "updateTwin": {"etag": "*", **change.to_json()},
        "startTime": start_time,
        "maxExecutionTimeInSeconds": max_seconds,
    }


def query_condition(selection: TwinSelection) -> str:
    """A job's ``queryCondition``: the WHERE condition over devices (never modules)."""
    if selection.ids:
        if any(module for _, module in selection.ids):
            raise JobUnsuitable("An IoT Hub job changes device twins only, not module twins.")
        quoted = ", ".join("'" + d.replace("'", "''") + "'" for d, _ in selection.ids)
        return f"deviceId IN [{quoted}]"
    match = _WHERE.match(selection.query)
    if match is None:
        raise JobUnsuitable(
            "An IoT Hub job changes device twins only: its query is on devices, not "
            "devices.modules."
        )
    return (match.group("cond") or "").strip() or "deviceId != ''"


def new_job_id() -> str:
    """A job id that says what made it and when, unique enough to never collide."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"twin-explorer-{stamp}-{secrets.token_hex(3)}"


def start_time(text: str | None) -> str:
    """The job's ``startTime`` (ISO 8601, UTC): now, or ``text`` read as ISO 8601 (a time
    without a zone is UTC)."""
    if not text:
        when = datetime.now(UTC)
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise JobUnsuitable(
                f"{text!r} is not a time: write it as ISO 8601, e.g. 2026-12-24T18:00:00Z."
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def start_job(
    service: JobService,
    selection: TwinSelection,
    change: BulkChange,
    *,
    start: str | None = None,
    max_seconds: int = DEFAULT_MAX_SECONDS,
) -> dict[str, Any]:
    """Schedule the change as a twin-update job; answers the job as the hub reports it."""
    request = job_request(new_job_id(), selection, change, start_time(start), max_seconds)
    return await service.start_job(request)


async def follow_job(
    service: JobService,
    job_id: str,
    on_status: Callable[[dict[str, Any]], None] | None = None,
    *,
    interval: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Read the job every ``interval`` seconds until it ends; each reading goes to
    ``on_status``. Answers the last reading."""
    while True:
        started = time.monotonic()
        job = await service.get_job(job_id)
        if on_status is not None:
            on_status(job)
        if job.get("status") in ENDED:
            return job
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def job_text(job: dict[str, Any]) -> str:
    """One line: the job's status and its device statistics."""
    stats = job.get("deviceJobStatistics") or {}
    total = stats.get("deviceCount") or 0
    parts = [
        f"{stats.get(key) or 0:,} {word}"
        for key, word in (
            ("succeededCount", "succeeded"),
            ("failedCount", "failed"),
            ("runningCount", "running"),
            ("pendingCount", "pending"),
        )
    ]
    text = f"Job {job.get('jobId', '')}: {job.get('status', 'unknown')}, {total:,} devices: "
    text += ", ".join(parts)
    reason = job.get("statusMessage") or job.get("failureReason")
    return text + (f" ({reason})" if reason else "")
