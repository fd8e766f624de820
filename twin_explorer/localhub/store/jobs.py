"""The hub file's tables for scheduled jobs (``core/jobs.py``): one row a job, one row a
device a job has reached.

The tables are created with ``IF NOT EXISTS`` when the core opens its jobs, not as a
numbered migration: a hub file from before jobs simply gains them, and an older program
ignores them.

``jobs.doc`` is the JobResponse as REST returns it, without its ``deviceJobStatistics``,
which come from the counters beside it (kept in the same transaction as the device rows
they count). ``cursor`` is the last device id the job has taken from its query, so a
restarted hub goes on from there.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL,
    cursor TEXT,
    device_count INTEGER,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_ns, job_id);
CREATE TABLE IF NOT EXISTS job_devices (
    job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (job_id, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_devices_by_status ON job_devices (job_id, status);
"""

_COLUMNS = "job_id, created_ns, type, status, doc, cursor, device_count, succeeded, failed, running"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class JobRow:
    """One ``jobs`` row."""

    __slots__ = (
        "created_ns",
        "cursor",
        "device_count",
        "doc",
        "failed",
        "job_id",
        "running",
        "status",
        "succeeded",
        "type",
    )

    def __init__(self, row: tuple[Any, ...]) -> None:
        (
            self.job_id,
            self.created_ns,
            self.type,
            self.status,
            doc,
            self.cursor,
            self.device_count,
            self.succeeded,
            self.failed,
            self.running,
        ) = row
        self.doc: dict[str, Any] = json.loads(doc)


class JobTables:
    """Row-level reads and writes of jobs; callers group writes in the store's
    transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)

    def insert(self, job_id: str, created_ns: int, doc: dict[str, Any]) -> bool:
        """False when a job with that id exists already."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO jobs (job_id, created_ns, type, status, doc)"
            " VALUES (?, ?, ?, ?, ?)",
            (job_id, created_ns, doc["type"], doc["status"], _dumps(doc)),
        )
        return cursor.rowcount == 1

    def get(self, job_id: str) -> JobRow | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        found = row.fetchone()
        return None if found is None else JobRow(found)

    def save(self, job: JobRow) -> None:
        self.conn.execute(
            "UPDATE jobs SET status = ?, doc = ?, cursor = ?, device_count = ?, succeeded = ?,"
            " failed = ?, running = ? WHERE job_id = ?",
            (
                job.doc["status"],
                _dumps(job.doc),
                job.cursor,
                job.device_count,
                job.succeeded,
                job.failed,
                job.running,
                job.job_id,
            ),
        )

    def unfinished(self) -> list[JobRow]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE status IN ('queued', 'scheduled', 'running')"
            " ORDER BY created_ns, job_id"
        )
        return [JobRow(row) for row in rows]

    def page(
        self,
        job_type: str | None,
        status: str | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[JobRow]:
        """Jobs oldest first, after the (created_ns, job_id) key ``after``."""
        where, params = ["1"], []
        if job_type is not None:
            where.append("type = ?")
            params.append(job_type)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if after is not None:
            where.append("(created_ns, job_id) > (?, ?)")
            params.extend(after)
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)}"
            " ORDER BY created_ns, job_id LIMIT ?",
            (*params, limit),
        )
        return [JobRow(row) for row in rows]

    def put_device(self, job_id: str, device_id: str, doc: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO job_devices (job_id, device_id, status, doc) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id, device_id) DO UPDATE"
            " SET status = excluded.status, doc = excluded.doc",
            (job_id, device_id, doc["status"], _dumps(doc)),
        )

    def end_running(self, job_id: str, status: str, error: dict[str, Any], when: str) -> None:
        """Devices still ``running`` when their job ended (cancelled, out of time)."""
        self.conn.execute(
            "UPDATE job_devices SET status = ?, doc = json_set(doc, '$.status', ?,"
            " '$.error', json(?), '$.endTimeUtc', ?, '$.lastUpdatedDateTimeUtc', ?)"
            " WHERE job_id = ? AND status = 'running'",
            (status, status, _dumps(error), when, when, job_id),
        )

    def devices(
        self, job_id: str, status: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        sql, params = "SELECT doc FROM job_devices WHERE job_id = ?", [job_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        rows = self.conn.execute(sql + " ORDER BY device_id LIMIT ?", (*params, limit))
        return [json.loads(row[0]) for row in rows]
