"""``twin-explorer hub``: run the local hub headless until SIGINT or SIGTERM.

When the hub is ready it prints exactly one line of JSON to stdout (see
:meth:`HubServer.ready_info`) and nothing else ever goes to stdout, so a parent process
(the app, a test, a script) reads that line to learn the ports, the service connection
string and the CA certificate. Logs go to stderr and to the ``hub`` log file.
No Qt here: the hub runs from the same entry point as the app but never loads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from pathlib import Path

from twin_explorer import logs, paths
from twin_explorer.localhub.runtime import eventhub_cli
from twin_explorer.localhub.runtime.config import (
    DEFAULT_AMQP_PORT,
    DEFAULT_HOST,
    DEFAULT_HOSTNAME,
    DEFAULT_MQTT_PORT,
    DEFAULT_PROXY_PORT,
    DEFAULT_REST_PORT,
)
from twin_explorer.localhub.runtime.signals import stop_on_signals
from twin_explorer.localhub.transports.listeners import (
    HANDSHAKE_TIMEOUT,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
)

logger = logging.getLogger(__name__)

_OFF = ("off", "none")

# How the hub's last word on stderr starts when it cannot start; the app looks for it.
COULD_NOT_START = "twin-explorer hub: could not start: "


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="run the local IoT Hub headless",
        description=(
            "Run the local IoT Hub until interrupted. When ready, print one JSON line with "
            "the hostname, ports, service connection string and CA certificate path. "
            "A port that is taken falls back to one the OS chooses (logged); 0 always "
            "lets the OS choose; 'off' turns MQTT, AMQP or the proxy off."
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the hub keeps its database and certificates "
        "(default: the app's data folder / localhub)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)",
    )
    parser.add_argument(
        "--hostname",
        default=DEFAULT_HOSTNAME,
        help=f"the hub's HostName in connection strings (default {DEFAULT_HOSTNAME})",
    )
    parser.add_argument(
        "--rest-port",
        type=_port,
        default=DEFAULT_REST_PORT,
        help=f"HTTPS port of the service REST API (default {DEFAULT_REST_PORT})",
    )
    parser.add_argument(
        "--mqtt-port",
        type=_optional_port,
        default=DEFAULT_MQTT_PORT,
        help=f"MQTT/TLS port for devices (default {DEFAULT_MQTT_PORT}, "
        "the port the device SDK dials), or 'off'",
    )
    parser.add_argument(
        "--amqp-port",
        type=_optional_port,
        default=DEFAULT_AMQP_PORT,
        help=f"AMQP/TLS port for devices and services (default {DEFAULT_AMQP_PORT}, "
        "the port the SDKs dial), or 'off'",
    )
    parser.add_argument(
        "--proxy-port",
        type=_optional_port,
        default=DEFAULT_PROXY_PORT,
        help="HTTP CONNECT proxy port through which clients reach <hostname>:8883 and "
        f"<hostname>:443 (default {DEFAULT_PROXY_PORT}), or 'off'",
    )
    limits = parser.add_argument_group(
        "connection limits", "every listener (REST, MQTT, proxy) keeps to these"
    )
    limits.add_argument(
        "--handshake-timeout",
        type=_seconds,
        default=HANDSHAKE_TIMEOUT,
        help=f"seconds a client has to finish the TLS handshake (default {HANDSHAKE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--header-timeout",
        type=_seconds,
        default=HEADER_TIMEOUT,
        help="seconds a client has to send its first request or MQTT CONNECT "
        f"(default {HEADER_TIMEOUT:g})",
    )
    limits.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=IDLE_TIMEOUT,
        help=f"seconds a REST connection may stay idle between requests (default {IDLE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="client sockets held at most, all listeners together (default: a margin "
        "below the process's descriptor limit, which is raised to its hard limit)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="create demo devices and modules on first start"
    )
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help=(
            "stop when standard input closes: a parent process keeps a pipe open, and the "
            "hub goes away with it even if the parent crashes"
        ),
    )
    # SUPPRESS: without -v here, the top-level -v/--verbose value stands.
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug detail"
    )
    parser.set_defaults(func=run)
    eventhub_cli.add_options(parser)
    eventhub_cli.add_subcommands(parser)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0..65535: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"seconds out of range (0, 3600]: {value}")
    return value


def _optional_port(text: str) -> int | None:
    return None if text.strip().lower() in _OFF else _port(text)


def run(args: argparse.Namespace) -> int:
    logs.configure("hub", verbose=getattr(args, "verbose", False))
    data_dir = args.data_dir if args.data_dir is not None else paths.data_dir() / "localhub"
    try:
        return asyncio.run(_serve(args, data_dir))
    except KeyboardInterrupt:  # Ctrl+C before the loop took over SIGINT
        return 130


async def _serve(args: argparse.Namespace, data_dir: Path) -> int:
    from twin_explorer.localhub.runtime.server import HubServer
    from twin_explorer.localhub.store.datadir import DataDirInUse
    from twin_explorer.localhub.transports.listeners import Limits

    hub = HubServer(
        data_dir,
        host=args.host,
        hostname=args.hostname,
        rest_port=args.rest_port,
        mqtt_port=args.mqtt_port,
        amqp_port=args.amqp_port,
        proxy_port=args.proxy_port,
        demo=args.demo,
        limits=Limits(
            handshake_timeout=args.handshake_timeout,
            header_timeout=args.header_timeout,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
        ),
    )
    stop = asyncio.Event()
    stop_on_signals(stop)
    if args.exit_with_stdin:
        _stop_on_stdin_eof(stop)
    try:
        await hub.start()
        eventhub_cli.apply_options(args, hub.core)
    except Exception as exc:
        # A folder in use is a plain fact for the user, not a bug: no traceback for it.
        logger.error(
            "the local hub could not start: %s", exc, exc_info=not isinstance(exc, DataDirInUse)
        )
        print(f"{COULD_NOT_START}{exc}", file=sys.stderr, flush=True)
        return 1
    try:
        sys.stdout.write(json.dumps(hub.ready_info()) + "\n")
        sys.stdout.flush()
        await stop.wait()
        logger.info("stopping the local hub")
    finally:
        await hub.close()
    return 0


def _stop_on_stdin_eof(stop: asyncio.Event) -> None:
    """Set ``stop`` when stdin reaches end of file (the parent closed it or died).

    A daemon thread reads, not the loop: a pipe on stdin cannot be watched by every event
    loop (Windows), while a blocking read works everywhere; and a daemon thread never
    holds up the exit when the hub stops for another reason.
    """
    loop = asyncio.get_running_loop()

    fd = sys.stdin.fileno()

    def wait_for_eof() -> None:
        # os.read on the descriptor: the buffered sys.stdin holds a lock while it blocks,
        # and a daemon thread holding it aborts the interpreter at exit.
        while os.read(fd, 4096):
            pass
        logger.info("standard input closed: the parent is gone")
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, name="stdin-watch", daemon=True).start()
