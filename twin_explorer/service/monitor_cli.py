"""``twin-explorer monitor``: the built-in endpoint's events as JSON lines.

By default it reads the local hub (its data folder gives the key and CA; ``--port`` if
its AMQP port is not 5671). ``--profile NAME`` takes a saved connection's Event
Hub-compatible connection string from the keyring; ``--connection-string-env VAR`` takes
one from the environment (never from argv). Nothing printed ever contains a key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from twin_explorer import paths
from twin_explorer.service.monitor import (
    LOCAL_AMQP_PORT,
    SOURCES,
    EndpointTarget,
    EventFilter,
    MonitorError,
    local_target,
    starting_position,
    stream,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="print the hub's events (telemetry, twin changes, lifecycle, connections)",
        description="Print the events of an IoT Hub's built-in Event Hub-compatible "
        "endpoint as JSON lines: the local hub by default, or an Azure hub.",
    )
    parser.add_argument("--device", metavar="GLOB", help="only devices matching (e.g. 'sensor-*')")
    parser.add_argument("--module", metavar="GLOB", help="only modules matching")
    parser.add_argument(
        "--source",
        action="append",
        choices=sorted(SOURCES),
        help="only these sources (repeat for several; default all)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        default="now",
        metavar="now|start|TIME",
        help="where to start: now (default), start (the oldest kept), or an ISO 8601 time",
    )
    parser.add_argument("--consumer-group", default="$Default", metavar="CG")
    parser.add_argument("--count", type=int, default=None, help="stop after this many events")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--profile", metavar="NAME", help="a saved connection (its Event Hub-compatible string)"
    )
    where.add_argument(
        "--connection-string-env",
        metavar="VAR",
        help="an environment variable holding an Event Hub-compatible connection string "
        "(Endpoint=sb://...;EntityPath=...); never on the command line, where others can read it",
    )
    where.add_argument(
        "--data-dir", type=Path, help="the local hub's data folder (default: the app's)"
    )
    parser.add_argument(
        "--port", type=int, default=LOCAL_AMQP_PORT, help="the local hub's AMQP port"
    )
    parser.set_defaults(func=run)


def _target(args: argparse.Namespace) -> EndpointTarget:
    if args.connection_string_env:
        text = os.environ.get(args.connection_string_env, "").strip()
        if not text:
            raise MonitorError(f"The environment variable {args.connection_string_env} is empty.")
        return EndpointTarget(text)
    if args.profile:
        # The string the app keeps beside the saved connection (Connections → Events).
        from twin_explorer.connection.profiles import ProfileError, ProfileManager

        try:
            secret = ProfileManager().get_events_connection_string(args.profile)
        except ProfileError as exc:
            raise MonitorError(str(exc)) from None
        if not secret:
            raise MonitorError(
                f"The saved connection '{args.profile}' has no Event Hub-compatible connection "
                "string: add it in Hub → Connections… (the built-in endpoint's, from the portal)."
            )
        return EndpointTarget(secret)
    return local_target(args.data_dir or paths.data_dir() / "localhub", args.port)


def run(args: argparse.Namespace) -> int:
    try:
        position = starting_position(args.start)
        target = _target(args)
    except MonitorError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 2
    accept = EventFilter(args.device, args.module, frozenset(SOURCES[s] for s in args.source or ()))
    printed = 0

    def emit(record: dict[str, Any]) -> bool:
        nonlocal printed
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()
        printed += 1
        return args.count is None or printed < args.count

    try:
        asyncio.run(stream(target, args.consumer_group, position, accept, emit))
    except KeyboardInterrupt:
        return 130
    except MonitorError as exc:
        print(f"monitor: {_redacted(str(exc), target)}", file=sys.stderr)
        return 1
    return 0


def _redacted(text: str, target: EndpointTarget) -> str:
    from twin_explorer.connection.redact import redact

    return redact(text.replace(target.connection_string, "<connection string>"))
