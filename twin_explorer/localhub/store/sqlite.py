"""The hub's SQLite file: schema, migrations and row-level reads and writes.

One connection, owned by the hub's thread (the asyncio shells call the core directly;
every operation is well under a millisecond). WAL journal; ``synchronous=FULL`` for the
writes the hub acknowledges, so a hub killed right after answering still has the write
after restart. Bookkeeping nobody waits for (``lastActivityTime``) commits with NORMAL.

JSON documents are stored as text: ``identity`` is the REST Device/Module document and
``doc`` the service-view twin (C.1), which GETs return as is and the query engine reads
with ``json_extract``. It holds the whole TwinDocument state too (sections, ``$metadata``,
``$version``s, ``version``), so no second copy is kept: at 300,000 twins that copy cost
a third of the file. Hot fields are real columns so counts and key lookups use indexes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twin_explorer.localhub.errors import DiskFull
from twin_explorer.localhub.store.datadir import DIR_MODE, create_private

logger = logging.getLogger(__name__)

DB_NAME = "hub.db"

# Each entry upgrades the schema by one version; PRAGMA user_version counts them.
# Append, never edit a shipped entry.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE policies (
        name TEXT PRIMARY KEY,
        primary_key TEXT NOT NULL,
        secondary_key TEXT NOT NULL,
        rights TEXT NOT NULL
    );
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        connection_state TEXT NOT NULL,
        identity TEXT NOT NULL
    );
    CREATE INDEX devices_status ON devices (status);
    CREATE INDEX devices_connection ON devices (connection_state);
    CREATE TABLE modules (
        device_id TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
        module_id TEXT NOT NULL,
        connection_state TEXT NOT NULL,
        identity TEXT NOT NULL,
        PRIMARY KEY (device_id, module_id)
    );
    -- module_id is '' for a device twin. is_module leads the paging index so each
    -- collection (devices, devices.modules) is one contiguous, ordered index range.
    CREATE TABLE twins (
        device_id TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
        module_id TEXT NOT NULL,
        is_module INTEGER NOT NULL,
        status TEXT NOT NULL,
        connection_state TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (device_id, module_id)
    );
    CREATE INDEX twins_paging ON twins (is_module, device_id, module_id);
    CREATE INDEX modules_connection ON modules (connection_state);
    CREATE INDEX twins_connection ON twins (connection_state);
    """,
    # The event log (store/event_log.py): per partition, sequence numbers from 0 and byte
    # offsets; module_id '' for a device. by_identity serves the per-identity reads.
    """
    CREATE TABLE events (
        partition INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        byte_offset INTEGER NOT NULL,
        enqueued_ns INTEGER NOT NULL,
        kind TEXT NOT NULL,
        device_id TEXT NOT NULL,
        module_id TEXT NOT NULL,
        identity_sequence INTEGER NOT NULL,
        properties TEXT NOT NULL,
        system_properties TEXT NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (partition, sequence)
    ) WITHOUT ROWID;
    CREATE INDEX events_by_identity ON events (device_id, module_id, kind, identity_sequence);
    CREATE INDEX events_by_time ON events (enqueued_ns);
    """,
]


def _is_full(exc: BaseException) -> bool:
    # SQLite turns ENOSPC into SQLITE_FULL (13), as it does a max_page_count reached.
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == (
        sqlite3.SQLITE_FULL
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Store:
    """Row-level access to ``hub.db``; callers group writes with :meth:`transaction`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits
        # behind our back and we choose the durability of each commit.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=5000")
        # Queries scan twin documents: a larger page cache and memory-mapped reads keep
        # a registry of a few hundred MB fast without copying every page.
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute("PRAGMA mmap_size=1073741824")
        self._depth = 0
        self._disk_full = False  # said once when writes start failing, once when back
        self._migrate()

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        path = data_dir / DB_NAME
        create_private(path)
        return cls(path)

    def close(self) -> None:
        self.conn.close()

    def open_reader(self) -> sqlite3.Connection:
        """A read-only connection to the same file for another thread (WAL lets it read
        the last committed state while this connection writes)."""
        conn = sqlite3.connect(
            f"{self.path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    # -- schema -------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this program "
                f"({len(MIGRATIONS)}); refusing to touch it"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self.transaction():
                for statement in script.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={version}")

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic write. ``durable=False`` skips the fsync for best-effort data."""
        if self._depth:  # nested: a savepoint in the outer transaction
            savepoint = f"nested{self._depth}"
            self.conn.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                # Undo just this part, so a caller that handles the error (one failed
                # identity in a bulk operation) keeps the rest of its transaction.
                self.conn.execute(f"ROLLBACK TO {savepoint}")
                raise
            finally:
                self.conn.execute(f"RELEASE {savepoint}")
                self._depth -= 1
            return
        if not durable:
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:  # SQLite may have rolled back already
                self.conn.execute("ROLLBACK")
            if _is_full(exc):
                raise self._full() from exc
            raise
        else:
            self._space_back()
        finally:
            self._depth = 0
            if not durable:
                self.conn.execute("PRAGMA synchronous=FULL")

    def _full(self) -> DiskFull:
        """The error for a write the disk had no room for; logged once, not per write."""
        if not self._disk_full:
            self._disk_full = True
            logger.error(
                "the disk holding the data folder %s is full: writes fail until space is "
                "freed (nothing written before is lost, and reads still work)",
                self.path.parent,
            )
        return DiskFull(self.path.parent)

    def _space_back(self) -> None:
        if self._disk_full:
            self._disk_full = False
            logger.warning("the data folder %s has space again: writes work", self.path.parent)

    # -- meta and policies --------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def policies(self) -> list[tuple[str, str, str, str]]:
        """(name, primary_key, secondary_key, comma-separated rights) rows."""
        return self.conn.execute(
            "SELECT name, primary_key, secondary_key, rights FROM policies ORDER BY name"
        ).fetchall()

    def put_policy(self, name: str, primary: str, secondary: str, rights: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO policies VALUES (?, ?, ?, ?)",
            (name, primary, secondary, rights),
        )

    # -- identities ---------------------------------------------------------------------

    def _json_row(self, sql: str, args: tuple[str, ...]) -> dict[str, Any] | None:
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else json.loads(row[0])

    def get_device(self, device_id: str) -> dict[str, Any] | None:
        return self._json_row("SELECT identity FROM devices WHERE device_id = ?", (device_id,))

    def get_module(self, device_id: str, module_id: str) -> dict[str, Any] | None:
        return self._json_row(
            "SELECT identity FROM modules WHERE device_id = ? AND module_id = ?",
            (device_id, module_id),
        )

    def save_device(self, identity: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO devices (device_id, status, connection_state, identity)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
            " status = excluded.status, connection_state = excluded.connection_state,"
            " identity = excluded.identity",
            (
                identity["deviceId"],
                identity["status"],
                identity["connectionState"],
                _dumps(identity),
            ),
        )

    def save_module(self, identity: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO modules (device_id, module_id, connection_state, identity)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id, module_id) DO UPDATE SET"
            " connection_state = excluded.connection_state, identity = excluded.identity",
            (
                identity["deviceId"],
                identity["moduleId"],
                identity["connectionState"],
                _dumps(identity),
            ),
        )

    def delete_device(self, device_id: str) -> None:
        # Modules and twins go with it through ON DELETE CASCADE.
        self.conn.execute("DELETE FROM devices WHERE device_id = ?", (device_id,))

    def delete_module(self, device_id: str, module_id: str) -> None:
        self.conn.execute(
            "DELETE FROM modules WHERE device_id = ? AND module_id = ?", (device_id, module_id)
        )
        self.conn.execute(
            "DELETE FROM twins WHERE device_id = ? AND module_id = ?", (device_id, module_id)
        )

    def list_devices(self, limit: int | None) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT identity FROM devices ORDER BY device_id LIMIT ?",
            (-1 if limit is None else limit,),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def list_modules(self, device_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT identity FROM modules WHERE device_id = ? ORDER BY module_id", (device_id,)
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def module_ids(self, device_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT module_id FROM modules WHERE device_id = ? ORDER BY module_id",
            (device_id,),
        ).fetchall()
        return [row[0] for row in rows]

    def count_modules(self, device_id: str) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM modules WHERE device_id = ?", (device_id,)
            ).fetchone()[0]
        )

    def set_connection(
        self, device_id: str, module_id: str, state: str, changed: str, activity: str | None
    ) -> None:
        """connectionState (+ when it changed, + lastActivityTime) on identity and twin."""
        fields = ["$.connectionState", state, "$.connectionStateUpdatedTime", changed]
        if activity is not None:
            fields += ["$.lastActivityTime", activity]
        marks = ", ".join("?" for _ in fields)
        table, where, args = self._identity_where(device_id, module_id)
        self.conn.execute(
            f"UPDATE {table} SET connection_state = ?,"
            f" identity = json_set(identity, {marks}) WHERE {where}",
            (state, *fields, *args),
        )
        twin_fields = ["$.connectionState", state]
        if activity is not None:
            twin_fields += ["$.lastActivityTime", activity]
        twin_marks = ", ".join("?" for _ in twin_fields)
        self.conn.execute(
            f"UPDATE twins SET connection_state = ?, doc = json_set(doc, {twin_marks})"
            " WHERE device_id = ? AND module_id = ?",
            (state, *twin_fields, device_id, module_id),
        )

    def set_activity(self, items: Iterable[tuple[str, str, str]]) -> None:
        """lastActivityTime for many (device_id, module_id, time) at once."""
        for device_id, module_id, when in items:
            table, where, args = self._identity_where(device_id, module_id)
            self.conn.execute(
                f"UPDATE {table} SET identity = json_set(identity, '$.lastActivityTime', ?)"
                f" WHERE {where}",
                (when, *args),
            )
            self.conn.execute(
                "UPDATE twins SET doc = json_set(doc, '$.lastActivityTime', ?)"
                " WHERE device_id = ? AND module_id = ?",
                (when, device_id, module_id),
            )

    @staticmethod
    def _identity_where(device_id: str, module_id: str) -> tuple[str, str, tuple[str, ...]]:
        if module_id:
            return "modules", "device_id = ? AND module_id = ?", (device_id, module_id)
        return "devices", "device_id = ?", (device_id,)

    # -- twins --------------------------------------------------------------------------

    def get_twin_doc(self, device_id: str, module_id: str) -> dict[str, Any] | None:
        return self._json_row(
            "SELECT doc FROM twins WHERE device_id = ? AND module_id = ?", (device_id, module_id)
        )

    def save_twin(self, device_id: str, module_id: str, doc: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO twins (device_id, module_id, is_module, status, connection_state,"
            " doc) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, module_id)"
            " DO UPDATE SET status = excluded.status,"
            " connection_state = excluded.connection_state, doc = excluded.doc",
            (
                device_id,
                module_id,
                int(bool(module_id)),
                doc["status"],
                doc["connectionState"],
                _dumps(doc),
            ),
        )

    # -- bulk and statistics ------------------------------------------------------------

    def bulk_insert(
        self,
        devices: Sequence[tuple[str, str, str, str]],
        modules: Sequence[tuple[str, str, str, str]],
        twins: Sequence[tuple[str, str, int, str, str, str]],
    ) -> None:
        """Raw rows in table column order; the caller has built and serialized them."""
        self.conn.executemany("INSERT INTO devices VALUES (?, ?, ?, ?)", devices)
        self.conn.executemany("INSERT INTO modules VALUES (?, ?, ?, ?)", modules)
        self.conn.executemany("INSERT INTO twins VALUES (?, ?, ?, ?, ?, ?)", twins)

    def device_counts(self) -> tuple[int, int]:
        """(total, enabled) devices."""
        total = self.conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
        enabled = self.conn.execute(
            "SELECT COUNT(*) FROM devices WHERE status = 'enabled'"
        ).fetchone()[0]
        return int(total), int(enabled)

    def connected_devices(self) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM devices WHERE connection_state = 'Connected'"
            ).fetchone()[0]
        )

    def reset_connections(self) -> None:
        """Nobody is connected to a hub that just started (columns and JSON agree)."""
        with self.transaction():
            for table, column in (
                ("devices", "identity"),
                ("modules", "identity"),
                ("twins", "doc"),
            ):
                self.conn.execute(
                    f"UPDATE {table} SET connection_state = 'Disconnected',"
                    f" {column} = json_set({column}, '$.connectionState', 'Disconnected')"
                    " WHERE connection_state != 'Disconnected'"
                )
