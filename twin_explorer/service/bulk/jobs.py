"""The seam for IoT Hub's own scheduled twin-update job, for very large sets on Azure.

Not wired to any window or command yet: the local hub learns ``/jobs/v2`` separately,
and the job runner (start, poll ``GET /jobs/v2/{id}``, cancel, per-device results from a
``devices.jobs`` query) comes with it. What is here is the request such a run sends,
built from the same selection and change as a per-twin run, so both paths take the
same input.

What a job cannot do, and a per-twin run does (say so wherever the option is offered):

* no per-twin etag: the job writes with ``etag: "*"``, over whatever is there;
* no preview of conflicts or of what is already so: the hub decides at run time;
* device twins only: a job's query condition selects devices, never modules;
* no revert from a report: the job reports success per device, not what it replaced.
"""

from __future__ import annotations

import re
from typing import Any

from twin_explorer.service.bulk.change import BulkChange
from twin_explorer.service.bulk.choose import TwinSelection

JOB_TYPE = "scheduleUpdateTwin"
DEFAULT_MAX_SECONDS = 3600
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
