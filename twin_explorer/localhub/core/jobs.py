"""Scheduled jobs (``/jobs/v2``): twin updates and direct methods over a device query.

:class:`Jobs` holds the service surface (create, get, cancel, query, a job's device
results); :meth:`Jobs.run` is the runner the hub starts on its loop. A job goes
``scheduled`` (start time ahead) or ``queued`` → ``running`` → ``completed``, or
``failed`` (its ``maxExecutionTimeInSeconds`` ran out) or ``cancelled``.

The loop never waits on a job's size. A running job takes its devices from its query in
keyset order, a bounded batch at a time: the batch is chosen on a worker thread (its own
read-only connection: a selective condition over 100,000 twins is a scan), then written
on the loop in one transaction through the same twin write path as ``PATCH /twins``
(etags, versions, desired notifications), and the runner yields before the next batch.
Method jobs go through the core's method router, at most :data:`METHOD_CONCURRENCY`
calls in flight per job.

Durability and restarts: a batch's twin writes, its device results, the job's counters
and its cursor commit together. A hub that restarts resumes every running job from its
cursor; method calls that were in flight when it stopped are made again (their devices
were recorded ``running`` and never answered). A job whose time ran out while the hub
was down fails with that reason at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twin_explorer.localhub.core.identity import validate_id
from twin_explorer.localhub.core.query import (
    BadContinuation,
    Count,
    QuerySyntaxError,
    SelectStar,
    decode_token,
    encode_token,
    matches,
    parse,
    project,
)
from twin_explorer.localhub.core.querying import where_sql
from twin_explorer.localhub.core.twins import check_service_patch
from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.store.jobs import JobRow, JobTables
from twin_explorer.localhub.store.reader import BackgroundReader
from twin_explorer.twin.clock import format_ns

if TYPE_CHECKING:
    from twin_explorer.localhub.core.context import CoreContext
    from twin_explorer.localhub.core.methods import DirectMethods
    from twin_explorer.localhub.core.twins import Twins

logger = logging.getLogger(__name__)

TWIN_JOB = "scheduleUpdateTwin"
METHOD_JOB = "scheduleDeviceMethod"
JOB_TYPES = (TWIN_JOB, METHOD_JOB)
STATUSES = ("queued", "scheduled", "running", "completed", "failed", "cancelled")
# Statuses the SDK models also list; a query for them is valid and finds nothing here.
KNOWN_TYPES = (
    *JOB_TYPES,
    "unknown",
    "export",
    "import",
    "backup",
    "readDeviceProperties",
    "writeDeviceProperties",
    "updateDeviceConfiguration",
    "rebootDevice",
    "factoryResetDevice",
    "firmwareUpdate",
    "restoreFromBackup",
    "failoverDataCopy",
)
KNOWN_STATUSES = (*STATUSES, "unknown", "enqueued")

DEFAULT_MAX_EXECUTION_SECONDS = 3600  # the Node JobClient's default, sent when not given
TWIN_BATCH = 100  # twins written per loop turn and transaction
METHOD_CONCURRENCY = 32  # method calls in flight per job
_RESPONSE_TIMEOUT = (30, 5, 300)  # default, min, max (B.7)
_CONNECT_TIMEOUT = (0, 0, 300)
_FRACTION = re.compile(r"\.(\d+)")
_DEVICE_JOBS = re.compile(r"\bFROM\s+devices\s*\.\s*jobs\b", re.IGNORECASE)
DEVICE_JOBS_SCAN = 500  # device job rows read a chunk
DEVICE_JOBS_CHUNKS = 20  # chunks read at most a page; a sparse match returns a short page


def is_device_jobs_query(text: object) -> bool:
    """Whether a query reads ``devices.jobs`` (the per-device job results)."""
    return isinstance(text, str) and _DEVICE_JOBS.search(text) is not None


def job_not_found(job_id: str) -> HubError:
    return HubError(404, "JobNotFound", 404002, f"Job {job_id!r} does not exist.")


def job_exists(job_id: str) -> HubError:
    return HubError(409, "JobAlreadyExists", 409000, f"A job with id {job_id!r} already exists.")


def parse_time(value: object, what: str) -> int:
    """An ISO-8601 UTC time as sent by the SDKs (``...Z``, 3, 6 or 7 fractional digits;
    no zone means UTC) as epoch nanoseconds."""
    if not isinstance(value, str) or not value.strip():
        raise argument_invalid(f"{what} must be an ISO-8601 date and time.")
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argument_invalid(f"{what} {value!r} is not an ISO-8601 date and time.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _whole_seconds(body: dict[str, Any], key: str, bounds: tuple[int, int, int]) -> int:
    default, low, high = bounds
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise argument_invalid(f"{key} must be a whole number of seconds.")
    if not low <= value <= high:
        raise argument_invalid(f"{key} must be between {low} and {high}, not {value:g}.")
    return int(value)


def _condition(text: object) -> Any:
    """The parsed WHERE of a job's queryCondition (a 400 for anything else)."""
    if not isinstance(text, str) or not text.strip():
        raise argument_invalid("queryCondition must be a non-empty WHERE condition.")
    try:
        return parse(f"SELECT * FROM devices WHERE {text}").where
    except QuerySyntaxError as exc:
        raise argument_invalid(f"Invalid queryCondition: {exc}") from None


def _method(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise argument_invalid("A scheduleDeviceMethod job needs a cloudToDeviceMethod object.")
    name = body.get("methodName")
    if not isinstance(name, str) or not name.strip():
        raise argument_invalid("cloudToDeviceMethod.methodName must be a non-empty string.")
    return {
        "methodName": name,
        "payload": body.get("payload"),
        "responseTimeoutInSeconds": _whole_seconds(
            body, "responseTimeoutInSeconds", _RESPONSE_TIMEOUT
        ),
        "connectTimeoutInSeconds": _whole_seconds(
            body, "connectTimeoutInSeconds", _CONNECT_TIMEOUT
        ),
    }


def _twin_patch(body: object) -> dict[str, Any]:
    """The tags and desired properties of a job's updateTwin (the SDKs also send
    ``etag: "*"`` and sometimes ``deviceId``, which a job ignores)."""
    if not isinstance(body, dict):
        raise argument_invalid("A scheduleUpdateTwin job needs an updateTwin object.")
    patch: dict[str, Any] = {}
    if body.get("tags") is not None:
        patch["tags"] = body["tags"]
    properties = body.get("properties")
    if isinstance(properties, dict):
        if properties.get("reported") is not None:
            raise argument_invalid("A job cannot update reported properties.")
        if properties.get("desired") is not None:
            patch["properties"] = {"desired": properties["desired"]}
    if not patch:
        raise argument_invalid("updateTwin must hold tags or properties.desired to update.")
    check_service_patch(patch)  # now, rather than once per device
    return patch


def _statistics(job: JobRow) -> dict[str, int]:
    count = job.device_count or 0
    done = job.succeeded + job.failed + job.running
    return {
        "deviceCount": count,
        "failedCount": job.failed,
        "succeededCount": job.succeeded,
        "runningCount": job.running,
        "pendingCount": max(0, count - done),
    }


def _device_error(error: HubError) -> dict[str, Any]:
    return {"code": error.error_code, "description": error.message}


@dataclass
class _Running:
    """A job the runner works on: its row as last saved and its task."""

    row: JobRow
    where_sql: str
    params: list[Any]
    task: asyncio.Task[None] | None = None
    calls: set[asyncio.Task[tuple[str, dict[str, Any]]]] = field(default_factory=set)


class Jobs:
    """The jobs of one hub: service surface and runner."""

    def __init__(
        self,
        ctx: CoreContext,
        twins: Twins,
        methods: DirectMethods,
        token_key: bytes,
        open_reader: Callable[[], sqlite3.Connection],
    ) -> None:
        self.ctx = ctx
        self.tables = JobTables(ctx.store.conn)
        self._twins = twins
        self._methods = methods
        self._token_key = token_key
        self._reader = BackgroundReader(open_reader)
        self._running: dict[str, _Running] = {}
        self._wake: asyncio.Event | None = None

    # -- the service surface ------------------------------------------------------------

    def create(self, job_id: str, body: object) -> dict[str, Any]:
        """PUT /jobs/v2/{id}: validate, store, and let the runner know."""
        validate_id(job_id, "job id")
        if not isinstance(body, dict):
            raise argument_invalid("The job request must be a JSON object.")
        if body.get("jobId") not in (None, job_id):
            raise argument_invalid(
                f"The jobId in the body ({body['jobId']!r}) differs from the one in the path."
            )
        job_type = body.get("type")
        if job_type not in JOB_TYPES:
            raise argument_invalid(
                f"type must be {TWIN_JOB!r} or {METHOD_JOB!r}, not {job_type!r}."
            )
        condition = body.get("queryCondition")
        _condition(condition)
        now_ns = self.ctx.now_ns()
        start = body.get("startTime")
        start_ns = now_ns if start is None else parse_time(start, "startTime")
        max_seconds = body.get("maxExecutionTimeInSeconds")
        if max_seconds is None:
            max_seconds = DEFAULT_MAX_EXECUTION_SECONDS
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, int) or max_seconds < 1:
            raise argument_invalid("maxExecutionTimeInSeconds must be a positive whole number.")
        doc: dict[str, Any] = {
            "jobId": job_id,
            "queryCondition": condition,
            "createdTime": format_ns(now_ns),
            "startTime": format_ns(start_ns),
            "maxExecutionTimeInSeconds": max_seconds,
            "type": job_type,
            "status": "scheduled" if start_ns > now_ns else "queued",
        }
        if job_type == METHOD_JOB:
            doc["cloudToDeviceMethod"] = _method(body.get("cloudToDeviceMethod"))
        else:
            doc["updateTwin"] = _twin_patch(body.get("updateTwin"))
        with self.ctx.store.transaction():
            if not self.tables.insert(job_id, now_ns, doc):
                raise job_exists(job_id)
        self._poke()
        return self.get(job_id)

    def get(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/v2/{id}: the JobResponse with its deviceJobStatistics."""
        job = self.tables.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return self._response(job)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """POST /jobs/v2/{id}/cancel: a job not yet finished stops where it is."""
        job = self.tables.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        if job.status in ("queued", "scheduled", "running"):
            running = self._running.get(job_id)
            row = running.row if running is not None else job
            self._finish(row, "cancelled", None)
            if running is not None and running.task is not None:
                running.task.cancel()  # and with it the method calls it has out
            self._poke()
        return self.get(job_id)

    def query(
        self,
        job_type: str | None,
        status: str | None,
        page_size: int,
        continuation: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """GET /jobs/v2/query: jobs oldest first, a page at a time."""
        if job_type is not None and job_type not in KNOWN_TYPES:
            raise argument_invalid(f"jobType {job_type!r} is not a job type.")
        if status is not None and status not in KNOWN_STATUSES:
            raise argument_invalid(f"jobStatus {status!r} is not a job status.")
        after = None
        if continuation:
            try:
                token = decode_token(continuation, key=self._token_key)
            except BadContinuation as exc:
                raise argument_invalid(f"Invalid continuation token: {exc}.") from None
            created, last = token.get("c"), token.get("j")
            if not (isinstance(created, int) and isinstance(last, str)):
                raise argument_invalid("Invalid continuation token: it is damaged.")
            after = (created, last)
        rows = self.tables.page(job_type, status, after, page_size + 1)
        more = len(rows) > page_size
        rows = rows[:page_size]
        token_out = None
        if more and rows:
            token_out = encode_token(
                {"c": rows[-1].created_ns, "j": rows[-1].job_id}, key=self._token_key
            )
        return [self._response(row) for row in rows], token_out

    def device_results(self, job_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """The devices a job has reached so far, with their outcome."""
        if self.tables.get(job_id) is None:
            raise job_not_found(job_id)
        return self.tables.devices(job_id, status)

    async def device_jobs_page(
        self, text: str, page_size: int, continuation: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """``SELECT ... FROM devices.jobs [WHERE ...]``: device job rows oldest job first.
        Paths may be written ``devices.jobs.status`` or ``status`` [IoT Hub's docs use the
        former]. Rows are read on the worker thread, a chunk at a time."""
        try:
            query = parse(_DEVICE_JOBS.sub("FROM devices", text, count=1))
        except QuerySyntaxError as exc:
            raise argument_invalid(f"Invalid query: {exc}") from None
        if isinstance(query.select, Count):
            raise argument_invalid("COUNT() over devices.jobs is not supported by this hub.")
        after: tuple[str, str] = ("", "")
        if continuation:
            try:
                token = decode_token(continuation, key=self._token_key)
            except BadContinuation as exc:
                raise argument_invalid(f"Invalid continuation token: {exc}.") from None
            last = token.get("dj")
            if not (isinstance(last, list) and len(last) == 2):
                raise argument_invalid("Invalid continuation token: it is damaged.")
            after = (str(last[0]), str(last[1]))
        limit = page_size if query.top is None else min(page_size, query.top)
        items: list[dict[str, Any]] = []
        for _ in range(DEVICE_JOBS_CHUNKS):
            rows = await self._reader.rows(
                "SELECT job_id, device_id, doc FROM job_devices WHERE (job_id, device_id) > (?, ?)"
                " ORDER BY job_id, device_id LIMIT ?",
                (*after, DEVICE_JOBS_SCAN),
            )
            for job_id, device_id, raw in rows:
                after = (job_id, device_id)
                doc = json.loads(raw)
                seen = {**doc, "devices": {"jobs": doc}}
                if matches(query.where, seen):
                    star = isinstance(query.select, SelectStar)
                    items.append(doc if star else project(query, seen))
                    if len(items) == limit:
                        break
            if len(items) == limit or len(rows) < DEVICE_JOBS_SCAN:
                break
        exhausted = len(items) < limit and len(rows) < DEVICE_JOBS_SCAN
        if exhausted or query.top is not None:
            return items, None
        return items, encode_token({"dj": list(after)}, key=self._token_key)

    def _response(self, job: JobRow) -> dict[str, Any]:
        running = self._running.get(job.job_id)
        row = running.row if running is not None else job
        return {**row.doc, "deviceJobStatistics": _statistics(row)}

    # -- the runner ---------------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Run jobs until cancelled: start due ones, sleep until the next start time."""
        self._wake = asyncio.Event()
        try:
            while True:
                self._wake.clear()
                next_start = self._start_due()
                timeout = None
                if next_start is not None:
                    timeout = max(0.0, (next_start - self.ctx.now_ns()) / 1e9)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
        finally:
            self._wake = None
            tasks = [r.task for r in self._running.values() if r.task is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._running.clear()
            self._reader.close()

    def _start_due(self) -> int | None:
        """Start every job whose time has come; the next start time still ahead."""
        now = self.ctx.now_ns()
        next_start = None
        for job in self.tables.unfinished():
            if job.job_id in self._running:
                continue
            start_ns = parse_time(job.doc["startTime"], "startTime")
            if job.status != "running" and start_ns > now:
                next_start = start_ns if next_start is None else min(next_start, start_ns)
                continue
            deadline = start_ns + job.doc["maxExecutionTimeInSeconds"] * 1_000_000_000
            if now >= deadline:
                self._finish(job, "failed", "The job did not finish within its time.")
                continue
            where = parse(f"SELECT * FROM devices WHERE {job.doc['queryCondition']}").where
            sql, params = where_sql(where, modules=False)
            running = _Running(job, sql, params)
            self._running[job.job_id] = running
            running.task = asyncio.get_running_loop().create_task(self._run(running, deadline))
            running.task.add_done_callback(lambda _t, jid=job.job_id: self._ended(jid))
        return next_start

    async def _run(self, running: _Running, deadline: int) -> None:
        run = self._run_twin_job if running.row.type == TWIN_JOB else self._run_method_job
        try:
            await run(running, deadline)
        except Exception as exc:  # a disk error, say: the job fails, the runner goes on
            logger.exception("job %s failed", running.row.job_id)
            with contextlib.suppress(Exception):
                self._finish(running.row, "failed", f"The hub could not run the job: {exc}")

    def _ended(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._poke()

    async def _next_devices(self, running: _Running, limit: int) -> list[str]:
        rows = await self._reader.rows(
            "SELECT device_id FROM twins WHERE is_module = 0 AND device_id > ?"
            f" AND ({running.where_sql}) ORDER BY is_module, device_id, module_id LIMIT ?",
            (running.row.cursor or "", *running.params, limit),
        )
        return [row[0] for row in rows]

    async def _begin(self, running: _Running) -> None:
        """Mark the job running and count its devices (on the worker thread)."""
        row = running.row
        if row.device_count is None:
            count = await self._reader.rows(
                f"SELECT COUNT(*) FROM twins WHERE is_module = 0 AND ({running.where_sql})",
                tuple(running.params),
            )
            row.device_count = int(count[0][0])
        if row.doc["status"] in ("queued", "scheduled"):  # not cancelled meanwhile
            row.doc["status"] = "running"
            with self.ctx.store.transaction():
                self.tables.save(row)

    def _live(self, running: _Running, deadline: int) -> bool:
        """Whether the job goes on: not cancelled, and within its time (else failed)."""
        if running.row.doc["status"] != "running":
            return False
        if self.ctx.now_ns() >= deadline:
            self._finish(running.row, "failed", "The job did not finish within its time.")
            return False
        return True

    def _device_doc(self, row: JobRow, device_id: str, status: str) -> dict[str, Any]:
        now = self.ctx.now()
        return {
            "jobId": row.job_id,
            "jobType": row.type,
            "deviceId": device_id,
            "status": status,
            "createdDateTimeUtc": now,
            "startTimeUtc": now,
            "lastUpdatedDateTimeUtc": now,
        }

    async def _run_twin_job(self, running: _Running, deadline: int) -> None:
        await self._begin(running)
        row = running.row
        patch = row.doc["updateTwin"]
        while self._live(running, deadline):
            devices = await self._next_devices(running, TWIN_BATCH)
            if not self._live(running, deadline):
                return
            with self.ctx.store.transaction():
                for device_id in devices:
                    doc = self._device_doc(row, device_id, "completed")
                    doc["outcome"] = {"deviceMethodResponse": None}  # as IoT Hub shows it
                    try:
                        self._twins.patch_twin(device_id, None, patch, None)
                    except HubError as error:
                        doc.update(status="failed", error=_device_error(error))
                        row.failed += 1
                    else:
                        row.succeeded += 1
                    doc["endTimeUtc"] = doc["lastUpdatedDateTimeUtc"]
                    self.tables.put_device(row.job_id, device_id, doc)
                if devices:
                    row.cursor = devices[-1]
                if len(devices) < TWIN_BATCH:
                    self._finish(row, "completed", None)
                else:
                    self.tables.save(row)
            await asyncio.sleep(0)  # let every connection have its turn

    async def _run_method_job(self, running: _Running, deadline: int) -> None:
        await self._begin(running)
        row = running.row
        call = row.doc["cloudToDeviceMethod"]
        # Calls that were in flight when the hub stopped are made again.
        again = [doc["deviceId"] for doc in self.tables.devices(row.job_id, "running")]
        for device_id in again:
            self._call(running, device_id, call)
        exhausted = False
        try:
            while self._live(running, deadline):
                free = METHOD_CONCURRENCY - len(running.calls)
                if free > 0 and not exhausted:
                    devices = await self._next_devices(running, free)
                    exhausted = len(devices) < free
                    if not self._live(running, deadline):
                        return
                    with self.ctx.store.transaction():
                        for device_id in devices:
                            doc = self._device_doc(row, device_id, "running")
                            self.tables.put_device(row.job_id, device_id, doc)
                            self._call(running, device_id, call)
                        row.running += len(devices)
                        if devices:
                            row.cursor = devices[-1]
                        self.tables.save(row)
                if not running.calls:
                    if exhausted:
                        with self.ctx.store.transaction():
                            self._finish(row, "completed", None)
                        return
                    continue
                remaining = max(0.0, (deadline - self.ctx.now_ns()) / 1e9)
                done, _ = await asyncio.wait(
                    running.calls, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if self._record(running, done):
                    return  # the hub is closing; the job resumes at the next start
        finally:
            for task in running.calls:
                task.cancel()

    def _call(self, running: _Running, device_id: str, call: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._invoke(device_id, call))
        running.calls.add(task)

    async def _invoke(self, device_id: str, call: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        try:
            status, payload = await self._methods.invoke_method(
                device_id,
                None,
                call["methodName"],
                call["payload"],
                call["responseTimeoutInSeconds"],
                call["connectTimeoutInSeconds"],
            )
        except HubError as error:
            if error.status == 503:  # the hub is closing: the call is made again later
                raise
            return device_id, {"status": "failed", "error": _device_error(error)}
        response = {"status": status, "payload": payload}
        return device_id, {"status": "completed", "outcome": {"deviceMethodResponse": response}}

    def _record(self, running: _Running, done: set[asyncio.Task]) -> bool:
        """Write the results of finished calls; True when the hub is closing."""
        row = running.row
        finished = []
        interrupted = False
        for task in done:
            running.calls.discard(task)
            if task.cancelled() or task.exception() is not None:
                interrupted = True  # stays running, made again on resume
                continue
            finished.append(task.result())
        if not finished or row.doc["status"] != "running":
            return interrupted
        with self.ctx.store.transaction():
            for device_id, result in finished:
                doc = self._device_doc(row, device_id, result["status"])
                doc.update(result, endTimeUtc=doc["lastUpdatedDateTimeUtc"])
                self.tables.put_device(row.job_id, device_id, doc)
                row.running -= 1
                if result["status"] == "completed":
                    row.succeeded += 1
                else:
                    row.failed += 1
            self.tables.save(row)
        return interrupted

    def _finish(self, row: JobRow, status: str, reason: str | None) -> None:
        """End a job (inside or outside a transaction)."""
        row.doc["status"] = status
        row.doc["endTime"] = self.ctx.now()
        if reason is not None:
            row.doc["failureReason"] = reason
            row.doc["statusMessage"] = reason
        with self.ctx.store.transaction():
            if row.running:  # calls still out when the job ended
                if status == "cancelled":
                    error = {"code": "JobCancelled", "description": "The job was cancelled."}
                    self.tables.end_running(row.job_id, "canceled", error, row.doc["endTime"])
                else:
                    error = {"code": "JobFailed", "description": reason or status}
                    self.tables.end_running(row.job_id, "failed", error, row.doc["endTime"])
                    row.failed += row.running
                row.running = 0
            self.tables.save(row)
        logger.info("job %s %s", row.job_id, status)
