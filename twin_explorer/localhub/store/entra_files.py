"""What the hub's Entra ID stand-in keeps: its token signing key (a file of its own in
the data folder, 0600) and the data-plane role assignments (a table in ``hub.db``).

The role table is created if missing rather than by a schema migration: it is a
self-contained addition that older files simply lack.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from twin_explorer.localhub.store.datadir import FILE_MODE
from twin_explorer.localhub.store.sqlite import Store

SIGNING_KEY_NAME = "entra-signing-key.pem"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS role_assignments (
    principal_id TEXT NOT NULL,
    role TEXT NOT NULL,
    principal_name TEXT NOT NULL,
    PRIMARY KEY (principal_id, role)
)
"""


def signing_key(data_dir: Path, make: Callable[[], bytes]) -> bytes:
    """The PEM key in ``data_dir``, created with ``make()`` (0600) on first use."""
    path = data_dir / SIGNING_KEY_NAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    pem = make()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return pem


@dataclass(frozen=True)
class RoleAssignment:
    principal_id: str
    principal_name: str
    role: str


class RoleAssignments:
    """Rows of (principal object id, role); read on every Entra request, so a change
    made by another process (``twin-explorer hub roles``) applies at once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        with store.transaction():
            store.conn.execute(_SCHEMA)

    def roles_of(self, principal_id: str) -> list[str]:
        rows = self._store.conn.execute(
            "SELECT role FROM role_assignments WHERE principal_id = ? ORDER BY role",
            (principal_id,),
        ).fetchall()
        return [row[0] for row in rows]

    def assign(self, principal_id: str, principal_name: str, role: str) -> bool:
        """True when the assignment is new."""
        with self._store.transaction():
            cursor = self._store.conn.execute(
                "INSERT OR IGNORE INTO role_assignments VALUES (?, ?, ?)",
                (principal_id, role, principal_name),
            )
        return cursor.rowcount > 0

    def remove(self, principal_id: str, role: str) -> bool:
        with self._store.transaction():
            cursor = self._store.conn.execute(
                "DELETE FROM role_assignments WHERE principal_id = ? AND role = ?",
                (principal_id, role),
            )
        return cursor.rowcount > 0

    def all(self) -> list[RoleAssignment]:
        rows = self._store.conn.execute(
            "SELECT principal_id, principal_name, role FROM role_assignments"
            " ORDER BY principal_name, role"
        ).fetchall()
        return [RoleAssignment(*row) for row in rows]
