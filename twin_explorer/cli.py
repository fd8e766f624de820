"""The one entry point: ``twin-explorer [subcommand]``.

No subcommand starts the desktop app. Subcommands import what they need lazily, so
``twin-explorer hub`` never loads Qt and starts fast, also from a frozen build.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from twin_explorer import APP_NAME, __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin-explorer",
        description=(
            f"{APP_NAME}: browse and edit Azure IoT Hub device and module twins, simulate "
            "modules, and run a local IoT Hub for offline work. Run without a subcommand "
            "to open the desktop app."
        ),
        epilog="Run 'twin-explorer SUBCOMMAND --help' for the options of a subcommand.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug detail to stderr as well"
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that this installation works: start a local hub in a temporary folder, "
        "run a simulated module, round-trip a twin patch, check the keyring; print a "
        "report and exit 0 only if everything worked (never touches your own data)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for register in _subcommands():
        register(subparsers)
    return parser


def _subcommands():
    """Each subcommand module offers ``add_parser(subparsers)`` and sets ``func``."""
    from twin_explorer.connection import cli as connections_cli
    from twin_explorer.localhub.runtime import cli as hub_cli
    from twin_explorer.service import monitor_cli
    from twin_explorer.simulator import cli as simulate_cli

    return [
        hub_cli.add_parser,
        connections_cli.add_parser,
        simulate_cli.add_parser,
        monitor_cli.add_parser,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if args.self_test:
        if func is not None:
            parser.error("--self-test takes no subcommand")
        from twin_explorer.selftest import run as self_test

        return self_test(verbose=args.verbose)
    if func is None:
        from twin_explorer.ui.app import run_app

        return run_app(verbose=args.verbose)
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
