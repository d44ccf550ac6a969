"""The uploads table: one row per upload, whose status only ever moves forward.

Every state change is a single conditional UPDATE, so two workers, a duplicated event or a
re-driven job can race without moving a row backwards or overwriting a final state.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import sqlite_utils

PENDING, PROCESSING, COMPLETED, FAILED = "pending", "processing", "completed", "failed"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)
# A callback's state: pending until a try is answered 2xx (delivered) or the last try fails.
DELIVERED = "delivered"
CALLBACK_STATES = (PENDING, DELIVERED, FAILED)
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

COLUMNS = {
    "id": str,
    "filename": str,
    "content_type": str,
    "key": str,
    "status": str,
    "error_code": str,
    "error_message": str,
    "declared_size": int,
    "bytes": int,
    "width": int,
    "height": int,
    "format": str,
    "attempts": int,
    "callback_url": str,
    "callback_state": str,
    "formats": str,
    "created_at": str,
    "updated_at": str,
    "upload_expires_at": str,
    "processing_started_at": str,
    # What the moderation model said; all null when moderation was off for the upload.
    "moderation_score": float,
    "moderation_flagged": int,
    "moderation_threshold": float,
    "moderation_model": str,
    "moderation_model_version": str,
}
# One row per try at delivering an upload's callback.
DELIVERY_COLUMNS = {
    "id": int,
    "upload_id": str,
    "attempted_at": str,
    "http_status": int,
    "error": str,
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z: sortable as text, which the sweeper's queries rely on."""
    return moment.astimezone(timezone.utc).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def connect(path: str) -> sqlite_utils.Database:
    """Open the database shared by the API and the workers (WAL lets them read while one writes)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    db = sqlite_utils.Database(conn)
    if db.journal_mode != "wal":
        _retry_while_locked(db.enable_wal)
    conn.execute("PRAGMA synchronous = NORMAL")
    return db


def ensure_schema(db: sqlite_utils.Database) -> None:
    def create():
        table = db["uploads"]
        table.create(COLUMNS, pk="id", defaults={"attempts": 0}, not_null={"status", "key"}, if_not_exists=True)
        _add_missing_columns(table)
        table.create_index(["status", "updated_at"], if_not_exists=True)
        db.execute("CREATE INDEX IF NOT EXISTS uploads_callback_pending ON uploads (updated_at)"
                   " WHERE callback_state = 'pending'")
        db.execute("CREATE INDEX IF NOT EXISTS uploads_flagged ON uploads (status, created_at)"
                   " WHERE moderation_flagged = 1")
        deliveries = db["webhook_deliveries"]
        deliveries.create(DELIVERY_COLUMNS, pk="id", not_null={"upload_id", "attempted_at"}, if_not_exists=True)
        deliveries.create_index(["upload_id"], if_not_exists=True)
    _retry_while_locked(create)


def _add_missing_columns(table) -> None:
    """Columns added since a database was made; another process adding one first is fine."""
    for name, kind in COLUMNS.items():
        if name in table.columns_dict:
            continue
        try:
            table.add_column(name, kind)
        except sqlite3.OperationalError as error:
            if "duplicate column" not in str(error):
                raise


def _retry_while_locked(action, seconds: float = 10.0):
    """Run a schema step that SQLite refuses outright (no busy wait) while another process
    does the same, as gunicorn workers starting together do."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def insert_upload(db, *, upload_id, filename, content_type, key, declared_size, callback_url,
                  upload_expires_at: datetime, formats: tuple[str, ...] = ("jpeg",)) -> dict:
    now = timestamp(utcnow())
    row = {
        "id": upload_id,
        "filename": filename,
        "content_type": content_type,
        "key": key,
        "status": PENDING,
        "declared_size": declared_size,
        "callback_url": callback_url,
        "callback_state": PENDING if callback_url else None,
        "formats": ",".join(formats),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "upload_expires_at": timestamp(upload_expires_at),
    }
    # Plain SQL: the table's shape is known, and this is the API's hot path.
    db.execute(f"INSERT INTO uploads ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return {**{name: None for name in COLUMNS}, **row}


def get_upload(db, upload_id: str) -> dict | None:
    rows = list(db.query("SELECT * FROM uploads WHERE id = ?", [upload_id]))
    return rows[0] if rows else None


def output_formats(row: dict) -> tuple[str, ...]:
    """The formats the derivatives are made in; rows from before formats existed are JPEG only."""
    return tuple((row["formats"] or "jpeg").split(","))


def record_delivery_attempt(db, upload_id: str, *, http_status: int | None, error: str | None) -> int:
    """Note one try at delivering the callback; returns how many tries there have been."""
    db["webhook_deliveries"].insert(
        {"upload_id": upload_id, "attempted_at": timestamp(utcnow()), "http_status": http_status, "error": error})
    return db.execute("SELECT count(*) FROM webhook_deliveries WHERE upload_id = ?", [upload_id]).fetchone()[0]


def delivery_attempts(db, upload_id: str) -> list[dict]:
    return list(db.query(
        "SELECT attempted_at, http_status, error FROM webhook_deliveries WHERE upload_id = ? ORDER BY id",
        [upload_id]))


def finish_callback(db, upload_id: str, state: str) -> bool:
    """Move a pending callback to delivered or failed; a final one never changes again."""
    cursor = db.execute("UPDATE uploads SET callback_state = ? WHERE id = ? AND callback_state = ?",
                        [state, upload_id, PENDING])
    return cursor.rowcount == 1


def claim_for_processing(db, upload_id: str) -> dict | None:
    """Move a row to processing and count the attempt; None when it is already final."""
    now = timestamp(utcnow())
    cursor = db.execute(
        "UPDATE uploads SET status = ?, attempts = attempts + 1, updated_at = ?,"
        " processing_started_at = ? WHERE id = ? AND status IN (?, ?)",
        [PROCESSING, now, now, upload_id, PENDING, PROCESSING],
    )
    return get_upload(db, upload_id) if cursor.rowcount else None


def release_attempt(db, upload_id: str) -> None:
    """Un-count an attempt that could not reach storage: an outage is not the image's fault."""
    db.execute("UPDATE uploads SET attempts = attempts - 1 WHERE id = ? AND status = ? AND attempts > 0",
               [upload_id, PROCESSING])


def record_moderation(db, upload_id: str, *, score: float, flagged: bool, threshold: float,
                      model: str, model_version: str) -> bool:
    """Keep what the moderation model said about a row being processed, before the row becomes
    final: a completed or rejected upload never lacks its verdict."""
    cursor = db.execute(
        "UPDATE uploads SET moderation_score = ?, moderation_flagged = ?, moderation_threshold = ?,"
        " moderation_model = ?, moderation_model_version = ? WHERE id = ? AND status = ?",
        [score, int(flagged), threshold, model, model_version, upload_id, PROCESSING],
    )
    return cursor.rowcount == 1


def flagged_counts(db) -> dict[str, int]:
    """How many uploads the moderation model flagged, by status (completed in flag mode, failed in
    reject mode); the partial index on flagged rows keeps this off the rest of the table."""
    return dict(db.execute(
        "SELECT status, count(*) FROM uploads WHERE moderation_flagged = 1 GROUP BY status").fetchall())


def mark_completed(db, upload_id: str, *, size: int, width: int, height: int, image_format: str) -> bool:
    cursor = db.execute(
        "UPDATE uploads SET status = ?, bytes = ?, width = ?, height = ?, format = ?,"
        " error_code = NULL, error_message = NULL, updated_at = ? WHERE id = ? AND status = ?",
        [COMPLETED, size, width, height, image_format, timestamp(utcnow()), upload_id, PROCESSING],
    )
    return cursor.rowcount == 1


def mark_failed(db, upload_id: str, code: str, message: str, *, size: int | None = None) -> bool:
    """Fail a row that is not final yet: from processing (a job) or pending (the sweeper)."""
    cursor = db.execute(
        "UPDATE uploads SET status = ?, error_code = ?, error_message = ?,"
        " bytes = COALESCE(?, bytes), updated_at = ? WHERE id = ? AND status IN (?, ?)",
        [FAILED, code, message, size, timestamp(utcnow()), upload_id, PENDING, PROCESSING],
    )
    return cursor.rowcount == 1


def in_status_older_than(db, status: str, age: timedelta, limit: int = 500) -> list[dict]:
    """Rows that have been in `status` for longer than `age`, oldest first."""
    cutoff = timestamp(utcnow() - age)
    return list(db.query(
        "SELECT * FROM uploads WHERE status = ? AND updated_at < ? ORDER BY updated_at LIMIT ?",
        [status, cutoff, limit],
    ))


def callbacks_waiting_older_than(db, age: timedelta, limit: int = 500) -> list[dict]:
    """Final rows whose webhook is still pending after `age`: its delivery job may have been
    lost (Redis down when the row became final), so the sweeper asks for it again."""
    cutoff = timestamp(utcnow() - age)
    return list(db.query(
        "SELECT * FROM uploads WHERE callback_state = 'pending' AND status IN (?, ?) AND updated_at < ?"
        " ORDER BY updated_at LIMIT ?",
        [COMPLETED, FAILED, cutoff, limit],
    ))
