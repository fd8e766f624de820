"""The hub file's table of automatic device management configurations
(``core/configurations.py``), created ``IF NOT EXISTS`` like the jobs tables.

``doc`` is the Configuration as stored (without its metrics results, which are counted
when asked for); ``created_ns`` orders them and breaks priority ties.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS configurations (
    id TEXT PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    doc TEXT NOT NULL
);
"""


class ConfigurationTable:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)

    def all(self) -> list[tuple[int, dict[str, Any]]]:
        """(created_ns, doc) of every configuration, oldest first."""
        rows = self.conn.execute(
            "SELECT created_ns, doc FROM configurations ORDER BY created_ns, id"
        )
        return [(created, json.loads(doc)) for created, doc in rows]

    def put(self, config_id: str, created_ns: int, doc: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO configurations (id, created_ns, doc) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (config_id, created_ns, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)),
        )

    def delete(self, config_id: str) -> None:
        self.conn.execute("DELETE FROM configurations WHERE id = ?", (config_id,))
