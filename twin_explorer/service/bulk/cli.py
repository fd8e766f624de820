"""``twin-explorer twins patch``: a bulk twin change headless.

    twin-explorer twins patch --query "SELECT * FROM devices WHERE tags.building = 43"
        --patch change.json --connection-string-env HUB_CS [--dry-run] [--yes]

The twins are counted, read and previewed first. ``--dry-run`` prints the preview, one
JSON line per twin, and stops. Otherwise the preview's summary goes to stderr, the run
asks before writing (``--yes`` does not ask; without a terminal it must be given), and
the report comes out on stdout, one JSON line per twin, as outcomes arrive at the end.
``--resume RUN`` finishes a run that was cancelled or killed; ``--revert RUN`` puts back
what a run applied.

``--as-job [--start TIME]`` hands the change to IoT Hub as a scheduled twin-update job
instead, for very large sets of device twins: the job's id, then its status and device
statistics every few seconds, then its final reading come out (JSON lines on stdout).
A job writes with no per-twin etag, previews nothing, changes device twins only and
cannot be reverted. Ctrl-C cancels the job.

The connection string comes from a saved connection, an environment variable or stdin,
never from the command line, and is never printed.

Exit codes: 0 every twin applied, skipped or blocked as previewed; 1 some twins failed
or conflicted (see the report); 2 what was given is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "twins",
        help="change many twins at once, with a per-twin preview",
        description="Bulk twin changes with a preview per twin, etag-guarded writes, "
        "resume and revert.",
    )
    parser.set_defaults(func=run)
    commands = parser.add_subparsers(dest="twins_command", metavar="COMMAND")
    commands.required = True
    patch = commands.add_parser(
        "patch",
        help="merge-patch tags and/or desired properties of the twins a query selects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = patch.add_mutually_exclusive_group(required=True)
    what.add_argument("--query", help="SELECT * FROM devices[.modules] [WHERE …]")
    what.add_argument(
        "--ids", metavar="FILE", help="twins named one per line: DEVICE or DEVICE/MODULE"
    )
    what.add_argument("--resume", metavar="RUN", help="finish a cancelled or killed run")
    what.add_argument("--revert", metavar="RUN", help="put back what a run applied")
    patch.add_argument(
        "--patch", metavar="FILE", help='merge patch: {"tags": {…}, "properties": {"desired": {…}}}'
    )
    patch.add_argument(
        "--set", action="append", default=[], metavar="PATH=JSON", dest="set_keys",
        help="instead of --patch: set a key, e.g. desired.telemetryInterval=30 (repeatable)",
    )  # fmt: skip
    patch.add_argument(
        "--remove", action="append", default=[], metavar="PATH", dest="remove_keys",
        help="instead of --patch: remove a key, e.g. tags.retired (repeatable)",
    )  # fmt: skip
    source = patch.add_mutually_exclusive_group()
    source.add_argument("--connection", metavar="NAME", help="a saved connection")
    source.add_argument(
        "--connection-string-env", metavar="VAR", help="read the service connection string "
        "from environment variable VAR",
    )  # fmt: skip
    source.add_argument(
        "--connection-string-stdin", action="store_true",
        help="read the service connection string from the first line of stdin",
    )  # fmt: skip
    patch.add_argument("--ca", metavar="PEM", help="trust only this CA certificate file")
    patch.add_argument("--dry-run", action="store_true", help="preview only; write nothing")
    patch.add_argument(
        "--as-job", action="store_true",
        help="run as an IoT Hub scheduled twin-update job (device twins only; no per-twin "
        "etag, no preview, no revert)",
    )  # fmt: skip
    patch.add_argument(
        "--start", metavar="TIME", help="with --as-job: when the job starts, ISO 8601 "
        "(e.g. 2026-12-24T18:00:00Z; default now)",
    )  # fmt: skip
    patch.add_argument("--yes", action="store_true", help="apply without asking")
    patch.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="writes in flight (default 8)"
    )
    patch.add_argument(
        "--poll", type=float, default=2.0, metavar="SECONDS", help=argparse.SUPPRESS
    )  # how often a job is read: tests read faster
    patch.add_argument("--report", metavar="FILE", help="also write the report (.jsonl or .csv)")
    patch.add_argument(
        "--runs-dir", metavar="DIR", help="where runs are kept (default: the app's data folder)"
    )


def run(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    from twin_explorer import logs

    logs.configure("twins", verbose=getattr(args, "verbose", False))
    try:  # the files are read here, before the loop runs
        args.change_text = _read(args.patch) if args.patch else None
        args.id_list = _read_ids(args.ids) if args.ids else []
    except UsageError as exc:
        _say(f"twins patch: {exc}")
        return EXIT_USAGE
    try:
        return asyncio.run(_patch(args, stdin or sys.stdin))
    except KeyboardInterrupt:
        return 130


class UsageError(Exception):
    pass


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _patch(args: argparse.Namespace, stdin: TextIO) -> int:
    from twin_explorer.service.bulk.change import ChangeError
    from twin_explorer.service.bulk.choose import SelectionError

    try:
        service = _service(args, stdin)
    except UsageError as exc:
        _say(f"twins patch: {exc}")
        return EXIT_USAGE
    try:
        return await _run(args, service, stdin)
    except (UsageError, ChangeError, SelectionError) as exc:
        _say(f"twins patch: {exc}")
        return EXIT_USAGE
    finally:
        await service.aclose()


async def _run(args: argparse.Namespace, service: Any, stdin: TextIO) -> int:
    from twin_explorer.service import errors
    from twin_explorer.service.bulk.run import BulkRun, Outcome

    if args.as_job:
        return await _run_job(args, service, stdin)
    if args.start:
        raise UsageError("--start goes with --as-job.")
    root = Path(args.runs_dir) if args.runs_dir else None
    try:
        if args.resume or args.revert:
            bulk = BulkRun.load(_run_folder(args.resume or args.revert, root))
            if args.revert:
                bulk = bulk.revert(root)
                _say(f"Revert of run {args.revert}: {len(bulk.items):,} twins to put back.")
        else:
            bulk = await _preview(args, service, root)
    except errors.ServiceError as exc:
        _say(f"twins patch: {exc}")
        return EXIT_SOME_FAILED
    _summary(bulk)
    if args.dry_run:
        for item in bulk.items:
            row = {"identity": item.identity, **item.to_json(), "change": item.summary()}
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return EXIT_OK
    pending = len(bulk.pending())
    if pending and not args.yes:
        if not stdin.isatty():
            raise UsageError("add --yes to apply without a terminal to ask on (or --dry-run).")
        _say(f"Apply the change to {pending:,} twins? [y/N] ")
        if stdin.readline().strip().lower() not in ("y", "yes"):
            _say(f"Nothing written. Run {bulk.id} is kept: --resume {bulk.id} applies it.")
            return EXIT_OK
    progress = await _apply(bulk, service, args.concurrency)
    for row in bulk.report():
        print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.report:
        from twin_explorer.service.bulk.report import write_report

        write_report(args.report, bulk.report())
    _say(f"Run {bulk.id}: {progress.text()}")
    bad = progress.counts.get
    return EXIT_SOME_FAILED if bad(Outcome.FAILED) or bad(Outcome.CONFLICT) else EXIT_OK


async def _run_job(args: argparse.Namespace, service: Any, stdin: TextIO) -> int:
    from twin_explorer.service import errors
    from twin_explorer.service.bulk.jobs import (
        LIMITS,
        JobUnsuitable,
        follow_job,
        job_request,
        job_text,
        new_job_id,
        start_time,
    )

    if args.resume or args.revert or args.dry_run:
        raise UsageError("--as-job runs a new change: not with --resume, --revert or --dry-run.")
    selection, change = _selection(args), _change(args)
    try:
        request = job_request(new_job_id(), selection, change, start_time(args.start))
    except JobUnsuitable as exc:
        raise UsageError(str(exc)) from None
    _say(LIMITS)
    if not args.yes:
        if not stdin.isatty():
            raise UsageError("add --yes to start the job without a terminal to ask on.")
        _say(f"Start job {request['jobId']} where {request['queryCondition']}? [y/N] ")
        if stdin.readline().strip().lower() not in ("y", "yes"):
            _say("No job started.")
            return EXIT_OK
    last = ""

    def show(job: dict[str, Any]) -> None:
        nonlocal last
        text = job_text(job)
        if text != last:  # a line per change, not per reading
            last = text
            _say(text)

    try:
        job = await service.start_job(request)
        print(json.dumps(job, ensure_ascii=False), flush=True)
        _say(f"Job {job['jobId']} started; following it (Ctrl-C cancels it).")
        try:
            job = await follow_job(service, job["jobId"], show, interval=args.poll)
        except asyncio.CancelledError:
            job = await service.cancel_job(request["jobId"])
            _say(f"Job {request['jobId']} cancelled: {job_text(job)}")
            raise
    except errors.ServiceError as exc:
        _say(f"twins patch: {exc}")
        return EXIT_SOME_FAILED
    print(json.dumps(job, ensure_ascii=False), flush=True)
    stats = job.get("deviceJobStatistics") or {}
    ok = job.get("status") == "completed" and not stats.get("failedCount")
    return EXIT_OK if ok else EXIT_SOME_FAILED


def _change(args: argparse.Namespace):
    from twin_explorer.service.bulk.change import change_from_keys, parse_change

    if args.set_keys or args.remove_keys:
        if args.change_text is not None:
            raise UsageError("give --patch, or --set/--remove, not both.")
        return change_from_keys(_set_keys(args.set_keys), args.remove_keys)
    if args.change_text is None:
        raise UsageError("--patch FILE (or --set/--remove) says what to change.")
    return parse_change(args.change_text)


def _selection(args: argparse.Namespace):
    from twin_explorer.service.bulk.choose import TwinSelection

    return TwinSelection(args.query) if args.query else TwinSelection.of(args.id_list)


async def _preview(args: argparse.Namespace, service: Any, root: Path | None):
    from twin_explorer.service.bulk.choose import count
    from twin_explorer.service.bulk.run import BulkRun

    change = _change(args)
    selection = _selection(args)
    total = await count(service, selection)
    _say(f"{total:,} twins selected; reading and previewing them…")
    return await BulkRun.preview(
        service, selection, change, hub=service.host, root=root, total=total
    )


async def _apply(bulk: Any, service: Any, concurrency: int):
    last = time.monotonic()

    def report_progress(_event: Any) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            _say(bulk.progress().text())

    task = asyncio.ensure_future(
        bulk.apply(service, concurrency=concurrency, publish=report_progress)
    )
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        bulk.cancel()
        return await task


def _summary(bulk: Any) -> None:
    counts = bulk.plan_counts()
    parts = ", ".join(f"{n:,} {plan.value}" for plan, n in counts.items())
    _say(f"Run {bulk.id} ({bulk.folder.path}): {len(bulk.items):,} twins: {parts}.")
    for item in bulk.items[:10]:
        _say(f"  {item.identity}: {item.plan.value}: {item.summary()}")
    if len(bulk.items) > 10:
        _say(f"  … and {len(bulk.items) - 10:,} more")


def _set_keys(pairs: list[str]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for pair in pairs:
        path, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"--set {pair!r}: write PATH=JSON, e.g. tags.floor=3.")
        try:
            keys[path] = json.loads(text)
        except ValueError:
            keys[path] = text  # a bare word is meant as a string: tags.site=seattle
    return keys


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None


def _read_ids(path: str) -> list[tuple[str, str | None]]:
    lines = _read(path).splitlines()
    ids = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            device, _, module = line.partition("/")
            ids.append((device, module or None))
    return ids


def _run_folder(run_id: str, root: Path | None) -> Path:
    from twin_explorer.service.bulk.store import list_runs

    for folder in list_runs(root):
        if folder.id == run_id:
            return folder.path
    raise UsageError(f"no run {run_id!r} is kept here.")


def _service(args: argparse.Namespace, stdin: TextIO):
    from twin_explorer.connection.profiles import ProfileError, ProfileManager
    from twin_explorer.connection.secrets import SecretStoreError
    from twin_explorer.connection.strings import ConnectionStringError
    from twin_explorer.service import errors
    from twin_explorer.service.hub import HubService
    from twin_explorer.service.local_hub import make_service

    if args.connection_string_env:
        text = os.environ.get(args.connection_string_env, "")
        if not text:
            raise UsageError(f"environment variable {args.connection_string_env} is empty.")
    elif args.connection_string_stdin:
        text = stdin.readline().strip()
    elif args.connection:
        try:
            text = ProfileManager().get_connection_string(args.connection)
        except (ProfileError, SecretStoreError) as exc:
            raise UsageError(str(exc)) from None
    else:
        raise UsageError(
            "say which hub: --connection NAME, --connection-string-env VAR or "
            "--connection-string-stdin."
        )
    try:
        if args.ca:
            return HubService(text, ca_cert=args.ca, use_env_proxies=False)
        return make_service(text)
    except (ConnectionStringError, errors.ServiceError) as exc:
        raise UsageError(f"that connection string cannot be used: {exc}") from None
