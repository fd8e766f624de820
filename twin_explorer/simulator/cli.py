"""``twin-explorer simulate``: run one simulated module headless, for demos elsewhere.

The connection string comes from stdin or an environment variable, never from the
command line (where ``ps`` and shell history would show it), and never appears in the
output. Every event is one JSON line on stdout; logs go to stderr and the log file.
SIGINT or SIGTERM closes the module and exits 0. No Qt is imported here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any, TextIO

from twin_explorer.connection.secret_args import (
    add_connection_string_source,
    read_connection_string,
)

log = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_FAILED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a simulated module headless, printing one JSON line per event",
        description=(
            "Connect as a module (or device) and answer desired patches, direct methods "
            "and send telemetry until interrupted. Each event is printed as one JSON line. "
            "The connection string is read from stdin or an environment variable so it "
            "never shows on the command line."
        ),
    )
    add_connection_string_source(parser, "module")
    parser.add_argument("--ca", metavar="PEM", help="trust only this CA certificate file")
    parser.add_argument(
        "--cert",
        metavar="FILE",
        help="authenticate with this X.509 certificate (PEM, chain after the leaf); the "
        "connection string then is HostName=...;DeviceId=...;[ModuleId=...;]x509=true",
    )
    parser.add_argument("--key", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--key-passphrase-env",
        metavar="VAR",
        help="read the passphrase of an encrypted --key from environment variable VAR",
    )
    parser.add_argument(
        "--proxy", metavar="HOST:PORT", help="reach the hub through this HTTP CONNECT proxy"
    )
    parser.add_argument(
        "--ack",
        choices=("echo", "pnp", "stamp", "none"),
        default="echo",
        help="answer desired patches: echo them into reported, acknowledge them the Plug "
        "and Play way, stamp the time of the last change, or not at all (default echo)",
    )
    parser.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME=STATUS:JSON",
        help="answer direct method NAME with STATUS and JSON payload (repeatable); "
        "other methods get 404",
    )
    parser.add_argument(
        "--telemetry",
        metavar="TEMPLATE",
        help="JSON message template, or @FILE; placeholders {{counter}}, {{time}}, "
        "{{random:MIN:MAX}}",
    )
    parser.add_argument(
        "--interval", type=float, default=None, metavar="SECONDS", help="telemetry interval"
    )
    parser.add_argument(
        "--property",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a message property on every telemetry message (repeatable)",
    )
    parser.add_argument(
        "--c2d",
        choices=("off", "complete"),
        default="off",
        help="a device's cloud-to-device messages: leave them queued at the hub, or "
        "receive them over MQTT, which completes each on arrival (default off)",
    )
    parser.add_argument(
        "--retry-interval",
        type=int,
        default=10,
        metavar="SECONDS",
        help="seconds between reconnect attempts (default 10)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug detail"
    )
    parser.set_defaults(func=run)


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"twin-explorer simulate: {message}", file=sys.stderr, flush=True)
    return code


def _template_text(value: str) -> str:
    if not value.startswith("@"):
        return value
    with open(value[1:], encoding="utf-8") as handle:
        return handle.read()


def build(args: argparse.Namespace, connection_string: str) -> tuple[Any, Any]:
    """The module and its telemetry template (or None), from the parsed arguments."""
    from twin_explorer.simulator import (
        ACK_CHOICES,
        InboxMode,
        InvalidSettings,
        MethodTable,
        SimulatedModule,
        TelemetryTemplate,
        Transport,
        parse_proxy,
        read_ca,
    )
    from twin_explorer.simulator.methods import parse_method_spec
    from twin_explorer.simulator.telemetry import parse_properties

    if (args.telemetry is None) != (args.interval is None):
        raise InvalidSettings("--telemetry and --interval go together.")
    if args.retry_interval < 1:
        raise InvalidSettings("--retry-interval is at least 1 second.")
    transport = Transport(
        ca_pem=read_ca(args.ca) if args.ca else None,
        proxy=parse_proxy(args.proxy) if args.proxy else None,
        retry_interval=args.retry_interval,
    )
    methods = MethodTable(rules=dict(parse_method_spec(spec) for spec in args.method))
    x509 = _x509_identity(args)
    template = None
    if args.telemetry is not None:
        if args.interval <= 0:
            raise InvalidSettings("--interval must be more than 0 seconds.")
        try:
            text = _template_text(args.telemetry)
        except OSError as exc:
            raise InvalidSettings(f"Could not read the template: {exc}.") from None
        template = TelemetryTemplate.parse(text, parse_properties(args.property))
    module = SimulatedModule(
        connection_string,
        transport=transport,
        behaviour=ACK_CHOICES[args.ack],
        methods=methods,
        resubscribe=True,
        x509=x509,
        inbox_mode=InboxMode.ON_ARRIVAL if args.c2d == "complete" else InboxMode.OFF,
    )
    return module, template


def _x509_identity(args: argparse.Namespace) -> Any:
    """The --cert/--key pair, read into memory (the SDK gets an encrypted copy)."""
    from twin_explorer.simulator import InvalidSettings
    from twin_explorer.simulator.x509_files import X509Identity

    if args.cert is None and args.key is None:
        return None
    if args.cert is None or args.key is None:
        raise InvalidSettings("--cert and --key go together.")
    passphrase = None
    if args.key_passphrase_env:
        passphrase = (os.environ.get(args.key_passphrase_env) or "").encode() or None
    try:
        with open(args.cert, encoding="ascii") as cert, open(args.key, "rb") as key:
            return X509Identity.from_pem(cert.read(), key.read(), passphrase)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSettings(f"Could not read the certificate or key: {exc}.") from None


def run(args: argparse.Namespace, *, stdin: TextIO | None = None) -> int:
    from twin_explorer import logs
    from twin_explorer.simulator.errors import SimulatorError

    logs.configure("simulate", verbose=getattr(args, "verbose", False))
    connection_string = read_connection_string(args, stdin or sys.stdin)
    if not connection_string:
        where = "stdin" if args.connection_string_stdin else f"${args.connection_string_env}"
        return _error(f"no connection string on {where}")
    try:
        module, template = build(args, connection_string)
    except SimulatorError as error:
        return _error(error.text)
    del connection_string
    try:
        return asyncio.run(_serve(module, template, args.interval))
    except KeyboardInterrupt:  # a second Ctrl+C while closing
        return 130


def _print(event: Any) -> None:
    from twin_explorer.simulator.events import EventKind

    if event.kind is EventKind.TWIN:  # the twin itself is for the panel, not the log
        return
    sys.stdout.write(json.dumps(event.to_json(), ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


async def _serve(module: Any, template: Any, interval: float | None) -> int:
    # The hub command's handler: SIGINT and SIGTERM set ``stop`` (also on Windows).
    from twin_explorer.localhub.runtime.signals import stop_on_signals
    from twin_explorer.simulator.errors import SimulatorError

    stop = asyncio.Event()
    stop_on_signals(stop)
    module.subscribe(_print)
    starting = asyncio.ensure_future(module.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # interrupted while connecting
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await module.close()
        return 0
    if isinstance(starting.exception(), SimulatorError):
        stopping.cancel()
        await module.close()  # the failure was printed as a "failed" event
        return EXIT_FAILED
    starting.result()
    try:
        if template is not None:
            module.start_telemetry(template, interval)
        await stop.wait()
    finally:
        await module.close()
    return 0
