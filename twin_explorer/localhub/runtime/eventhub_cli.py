"""``twin-explorer hub consumer-groups add|list|remove``: the built-in endpoint's
consumer groups, kept in the hub's data folder.

It opens the folder itself, so the hub must not be running on it (its lock says so);
a running hub takes the same changes through ``PUT``/``DELETE
/_localhub/eventhub/consumergroups/{name}`` (what the app calls).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from twin_explorer import paths
from twin_explorer.localhub.runtime.config import DEFAULT_HOSTNAME

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore


def add_options(hub: argparse.ArgumentParser) -> None:
    """The ``hub`` command's options for its built-in endpoint."""
    hub.add_argument(
        "--routes",
        metavar="SOURCES",
        help="comma-separated sources the Event Hub-compatible endpoint carries, of "
        "telemetry, twin, lifecycle, connection (kept; default: all four)",
    )
    hub.add_argument(
        "--retention-hours",
        type=float,
        default=24.0,
        help="how long the endpoint keeps events (default 24)",
    )
    hub.add_argument(
        "--retention-mb",
        type=int,
        default=256,
        help="how many megabytes of event bodies each partition keeps (default 256)",
    )


def apply_options(args: argparse.Namespace, core: HubCore) -> None:
    """Apply ``add_options``' values to a started hub (HubError for a bad route)."""
    if args.routes is not None:
        core.eventhub.set_routes([r.strip() for r in args.routes.split(",") if r.strip()])
    core.event_log.retention = replace(
        core.event_log.retention,
        max_age_ns=int(args.retention_hours * 3600 * 10**9),
        max_bytes=args.retention_mb * 1024 * 1024,
    )


def add_subcommands(hub: argparse.ArgumentParser) -> None:
    commands = hub.add_subparsers(dest="hub_command", metavar="{consumer-groups}")
    groups = commands.add_parser(
        "consumer-groups",
        help="list, add or remove consumer groups of the Event Hub-compatible endpoint",
    )
    groups.add_argument("action", choices=("list", "add", "remove"))
    groups.add_argument("name", nargs="?", help="the consumer group (add, remove)")
    groups.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twin_explorer.localhub.core.hub import HubCore
    from twin_explorer.localhub.errors import HubError
    from twin_explorer.localhub.store.datadir import DataDirInUse, DataDirLock

    if args.action != "list" and not args.name:
        print(f"consumer-groups {args.action}: name the consumer group", file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir or paths.data_dir() / "localhub"
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except DataDirInUse as exc:
        print(
            f"{exc}\nA running hub changes its consumer groups through "
            "PUT or DELETE /_localhub/eventhub/consumergroups/NAME (or stop it first).",
            file=sys.stderr,
        )
        return 1
    try:
        with HubCore.open(data_dir, args.hostname or DEFAULT_HOSTNAME) as core:
            endpoint = core.eventhub
            if args.action == "add":
                endpoint.add_consumer_group(args.name)
            elif args.action == "remove":
                endpoint.remove_consumer_group(args.name)
            for group in endpoint.consumer_groups():
                print(group)
    except HubError as error:
        print(f"consumer-groups {args.action}: {error.message}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    return 0
