"""``twin-explorer hub roles assign|list|remove``: the local hub's data-plane role
assignments, as ``az role assignment`` manages them on a real hub.

It writes the hub's store directly (SQLite serializes it with a running hub, which reads
the assignments on every request), so a change applies at once, running hub or not.
A principal is its object id, or one of the hub's own test principals by name:
``test-client`` (or its client id) and ``test-user`` (or its sign-in name).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin_explorer import paths
from twin_explorer.localhub.core.roles import ROLES, UnknownRole, role_name


def add_parser(commands: argparse._SubParsersAction) -> None:
    """``hub roles ...`` among the hub command's subcommands."""
    roles = commands.add_parser(
        "roles",
        help="manage the local hub's data-plane role assignments (Entra ID sign-in)",
        description="Who may do what with an Entra ID token: "
        + "; ".join(ROLES)
        + ". Principals: an object id, 'test-client' or 'test-user'.",
    )
    actions = roles.add_subparsers(dest="roles_command", metavar="ACTION", required=True)
    for name, text in (("assign", "give a principal a role"), ("remove", "take a role away")):
        action = actions.add_parser(name, help=text, description=text)
        _data_dir_option(action)
        action.add_argument("principal", help="object id, 'test-client' or 'test-user'")
        action.add_argument("role", help="e.g. 'IoT Hub Data Reader' (or 'Data Reader')")
        action.set_defaults(func=run)
    listing = actions.add_parser("list", help="show the role assignments")
    _data_dir_option(listing)
    listing.set_defaults(func=run)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the hub's data folder (default: the app's data folder / localhub)",
    )


def run(args: argparse.Namespace) -> int:
    from twin_explorer.localhub.core.entra import resolve_principal
    from twin_explorer.localhub.store.entra_files import RoleAssignments
    from twin_explorer.localhub.store.sqlite import DB_NAME, Store

    data_dir = args.data_dir if args.data_dir is not None else paths.data_dir() / "localhub"
    if not (data_dir / DB_NAME).exists():
        return _fail(f"There is no local hub in {data_dir}; start it once first.")
    store = Store.open(data_dir)
    try:
        assignments = RoleAssignments(store)
        if args.roles_command == "list":
            for row in assignments.all():
                print(f"{row.principal_name}\t{row.principal_id}\t{row.role}")
            return 0
        try:
            role = role_name(args.role)
            principal_id, name = resolve_principal(store, args.principal)
        except (UnknownRole, ValueError) as exc:
            return _fail(str(exc))
        if args.roles_command == "assign":
            new = assignments.assign(principal_id, name, role)
            print(f"{name} has the role {role}" + ("" if new else " (already)"))
            return 0
        if not assignments.remove(principal_id, role):
            return _fail(f"{name} does not have the role {role}.")
        print(f"{name} no longer has the role {role}")
        return 0
    finally:
        store.close()


def _fail(message: str) -> int:
    print(f"twin-explorer hub roles: {message}", file=sys.stderr)
    return 2
