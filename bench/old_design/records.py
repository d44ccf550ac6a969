"""The replaced service's uploads table, in SQLite as its ORM left it: the rollback journal and
a connection per request or task, no WAL."""

from __future__ import annotations

import sqlite3
import time

SCHEMA = """CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    completed_at REAL
)"""
FINAL = ("completed", "failed")


def connect(path: str) -> sqlite3.Connection:
    database = sqlite3.connect(path, timeout=5, isolation_level=None)
    database.row_factory = sqlite3.Row
    return database


def create_schema(path: str) -> None:
    database = connect(path)
    try:
        database.execute(SCHEMA)
    finally:
        database.close()


def insert(database: sqlite3.Connection, upload_id: str, filename: str, content_type: str, size: int) -> None:
    database.execute("INSERT INTO uploads (id, filename, content_type, size, status, created_at)"
                     " VALUES (?, ?, ?, ?, 'pending', ?)", (upload_id, filename, content_type, size, time.time()))


def set_status(database: sqlite3.Connection, upload_id: str, status: str, error: str | None = None) -> None:
    """completed_at is the moment the row turned final, written in the same UPDATE: what a
    client polling infinitely often would see, as imgpipe's updated_at is."""
    completed_at = time.time() if status in FINAL else None
    database.execute("UPDATE uploads SET status = ?, error = ?, completed_at = ? WHERE id = ?",
                     (status, error, completed_at, upload_id))


def find(database: sqlite3.Connection, upload_id: str) -> sqlite3.Row | None:
    return database.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()


def final_rows(database: sqlite3.Connection, upload_ids: list[str]) -> dict[str, sqlite3.Row]:
    marks = ",".join("?" * len(upload_ids))
    rows = database.execute(f"SELECT * FROM uploads WHERE id IN ({marks}) AND status IN ('completed', 'failed')",
                            upload_ids)
    return {row["id"]: row for row in rows}
