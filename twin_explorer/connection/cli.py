"""``twin-explorer connections add|list|remove``: saved hub connections from a terminal.

The connection string is read from stdin, never from argv (argv is visible to every user
in the process list and lands in shell history): piped text as is, or a hidden getpass
prompt on a terminal. Nothing printed ever contains the secret.

Exit codes: 0 ok, 1 the environment failed (keyring, files), 2 what was given is wrong
(invalid connection string, unknown or duplicate name). argparse itself also uses 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, TextIO

from twin_explorer.connection.profiles import (
    Profile,
    ProfileError,
    ProfileManager,
    ProfileStorageError,
)
from twin_explorer.connection.redact import redact
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.connection.strings import ConnectionStringError

COMMAND = "connections"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(subparsers: Any) -> None:
    """Add ``connections`` to the main parser's subparsers; sets ``func=run``."""
    parser = subparsers.add_parser(
        COMMAND,
        help="manage saved IoT Hub connections",
        description="Manage saved IoT Hub connections. Connection strings are kept in the "
        "system keyring; only names and hosts are written to disk.",
    )
    parser.set_defaults(func=run)
    commands = parser.add_subparsers(dest="connections_command", metavar="COMMAND")
    commands.required = True

    add = commands.add_parser(
        "add",
        help="save a connection; the connection string is read from stdin",
        description="Save a hub connection. Pipe the service connection string on stdin "
        "(e.g. from a password manager), or type it at the hidden prompt.",
    )
    add.add_argument("name", help="a name for the connection")
    add.add_argument("--local", action="store_true", help="mark it as a local-hub connection")
    # Catch a connection string given as an argument, so argparse never echoes it back in an
    # "unrecognized arguments" error; run() refuses it without repeating it.
    add.add_argument("extra", nargs="*", help=argparse.SUPPRESS)

    listing = commands.add_parser("list", help="show saved connections (never their keys)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    remove = commands.add_parser("remove", help="forget a connection and its secret")
    remove.add_argument("name", help="the connection to remove")


def run(args: argparse.Namespace, *, manager: ProfileManager | None = None) -> int:
    """Run a parsed ``connections`` command and return the process exit code."""
    manager = manager if manager is not None else ProfileManager()
    command = args.connections_command
    try:
        if command == "add":
            return _add(manager, args)
        if command == "list":
            return _list(manager, json_output=args.json)
        if command == "remove":
            manager.remove(args.name)
            print(f"Removed connection '{args.name}'.")
            return EXIT_OK
    except (ProfileStorageError, SecretStoreError) as exc:
        return _error(command, str(exc), EXIT_FAILED)
    except (ConnectionStringError, ProfileError) as exc:
        return _error(command, str(exc), EXIT_BAD_INPUT)
    return _error(command, f"unknown command '{command}'", EXIT_BAD_INPUT)


def _error(command: str, message: str, code: int) -> int:
    print(f"twin-explorer {COMMAND} {command}: error: {redact(message)}", file=sys.stderr)
    return code


def _read_secret(stdin: TextIO) -> str | None:
    if stdin.isatty():
        try:
            return getpass.getpass("Connection string (input hidden): ")
        except (EOFError, KeyboardInterrupt):
            return None
    return stdin.read()


def _add(manager: ProfileManager, args: argparse.Namespace) -> int:
    if getattr(args, "extra", None):
        return _error(
            "add",
            "give the connection string on stdin, not as an argument (arguments are visible "
            "to other users and kept in shell history); nothing was saved",
            EXIT_BAD_INPUT,
        )
    text = _read_secret(sys.stdin)
    if text is None:
        return _error("add", "cancelled; nothing was saved", EXIT_FAILED)
    if not text.strip():
        return _error("add", "no connection string on stdin; nothing was saved", EXIT_BAD_INPUT)
    profile = manager.add(args.name, text, local=args.local)
    print(f"Saved connection '{profile.name}' ({profile.host}, policy {profile.policy}).")
    return EXIT_OK


def _list(manager: ProfileManager, *, json_output: bool) -> int:
    profiles = manager.list()
    if json_output:
        print(json.dumps([p.to_json() for p in profiles], indent=2))
        return EXIT_OK
    if not profiles:
        print("No saved connections. Add one with: twin-explorer connections add NAME")
        return EXIT_OK
    print(_table(profiles))
    return EXIT_OK


def _table(profiles: list[Profile]) -> str:
    rows = [("NAME", "HOST", "POLICY", "LAST USED")]
    rows += [
        (
            p.name + (" (local)" if p.local else ""),
            p.host,
            "Entra ID" if p.entra is not None else p.policy,
            p.last_used or "never",
        )
        for p in profiles
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )
