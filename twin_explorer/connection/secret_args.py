"""Command-line options that take a connection string without showing it.

A connection string never goes on the command line (``ps`` and shell history would
show it): commands read it from the first line of stdin or from an environment variable.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO


def add_connection_string_source(parser: argparse.ArgumentParser, what: str) -> None:
    """``--connection-string-stdin`` or ``--connection-string-env VAR``, one required;
    ``what`` names the string in the help ("module", "the hub's service")."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--connection-string-stdin",
        action="store_true",
        help=f"read the {what} connection string from the first line of stdin",
    )
    source.add_argument(
        "--connection-string-env",
        metavar="VAR",
        help=f"read the {what} connection string from environment variable VAR",
    )


def read_connection_string(args: argparse.Namespace, stdin: TextIO) -> str | None:
    """The connection string the options above point at, or None when there is none."""
    if args.connection_string_stdin:
        return stdin.readline().strip() or None
    return (os.environ.get(args.connection_string_env) or "").strip() or None
