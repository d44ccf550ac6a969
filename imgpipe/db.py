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
    "upload_token_id": str,
}
# One row per try at delivering an upload's callback.
DELIVERY_COLUMNS = {
    "id": int,
    "upload_id": str,
    "attempted_at": str,
    "http_status": int,
    "error": str,
}
# One row per browser upload token id that has created a capped upload: what it has used so far
# and when its latest token expires.
UPLOAD_TOKEN_COLUMNS = {
    "id": str,
    "files": int,
    "bytes": int,
    "expires_at": str,
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
        table.create_index(["status", "upload_expires_at"], if_not_exists=True)
        deliveries = db["webhook_deliveries"]
        deliveries.create(DELIVERY_COLUMNS, pk="id", not_null={"upload_id", "attempted_at"}, if_not_exists=True)
        deliveries.create_index(["upload_id"], if_not_exists=True)
        db["upload_tokens"].create(UPLOAD_TOKEN_COLUMNS, pk="id", not_null={"files", "bytes"}, if_not_exists=True)
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
                  upload_expires_at: datetime, formats: tuple[str, ...] = ("jpeg",),
                  upload_token_id: str | None = None) -> dict:
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
        "upload_token_id": upload_token_id,
    }
    # Plain SQL: the table's shape is known, and this is the API's hot path.
    db.execute(f"INSERT INTO uploads ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return {**{name: None for name in COLUMNS}, **row}


def charge_upload_token(db, token_id: str, expires_at: datetime, *, files: int, size: int,
                        max_files: int | None, max_bytes: int | None) -> bool:
    """Count `files` new uploads of `size` bytes in all against a browser token's caps; False,
    with nothing counted, when that would go over either cap.

    The check and the count are one conditional UPDATE, so requests racing on any number of API
    processes and hosts never pass a cap together.
    """
    db.execute("INSERT INTO upload_tokens (id, files, bytes, expires_at) VALUES (?, 0, 0, ?)"
               " ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at"
               " WHERE upload_tokens.expires_at < excluded.expires_at", [token_id, timestamp(expires_at)])
    conditions, params = ["id = ?"], [token_id]
    if max_files is not None:
        conditions.append("files + ? <= ?")
        params += [files, max_files]
    if max_bytes is not None:
        conditions.append("bytes + ? <= ?")
        params += [size, max_bytes]
    cursor = db.execute(f"UPDATE upload_tokens SET files = files + ?, bytes = bytes + ? WHERE {' AND '.join(conditions)}",
                        [files, size, *params])
    return cursor.rowcount == 1


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


def in_status_older_than(db, status: str, age: timedelta, limit: int = 500,
                         after: tuple[str, str] | None = None) -> list[dict]:
    """Rows that have been in `status` for longer than `age`, oldest first, from after `after`."""
    cutoff = timestamp(utcnow() - age)
    condition, values = _after(after)
    return list(db.query(
        f"SELECT * FROM uploads WHERE status = ? AND updated_at < ?{condition} ORDER BY updated_at, id LIMIT ?",
        [status, cutoff, *values, limit],
    ))


def callbacks_waiting_older_than(db, age: timedelta, limit: int = 500,
                                 after: tuple[str, str] | None = None) -> list[dict]:
    """Final rows whose webhook is still pending after `age`: its delivery job may have been
    lost (Redis down when the row became final), so the sweeper asks for it again."""
    cutoff = timestamp(utcnow() - age)
    condition, values = _after(after)
    return list(db.query(
        "SELECT * FROM uploads WHERE callback_state = 'pending' AND status IN (?, ?) AND updated_at < ?"
        f"{condition} ORDER BY updated_at, id LIMIT ?",
        [COMPLETED, FAILED, cutoff, *values, limit],
    ))


def page_end(rows: list[dict], limit: int, column: str = "updated_at") -> tuple[str, str] | None:
    """Where the next page of a query ordered by (column, id) starts (its `after`): past this
    page's last row, or from the beginning again when this page was the last. Taking rows a
    page at a time this way, a sweep reaches every matching row in turn however many there are."""
    return (rows[-1][column], rows[-1]["id"]) if len(rows) == limit else None


def _after(after: tuple[str, str] | None, column: str = "updated_at") -> tuple[str, list]:
    if after is None:
        return "", []
    value, upload_id = after
    return f" AND ({column} > ? OR ({column} = ? AND id > ?))", [value, value, upload_id]


def oldest_pending_at(db) -> datetime | None:
    """When the oldest upload still pending was made. A pending row is never updated, so its
    updated_at is its creation time, which the (status, updated_at) index finds at once."""
    value = db.execute("SELECT MIN(updated_at) FROM uploads WHERE status = ?", [PENDING]).fetchone()[0]
    return parse_timestamp(value) if value else None


def pending_with_ids(db, upload_ids: list[str]) -> list[dict]:
    """The rows among `upload_ids` that are still pending (id and updated_at), 500 ids per
    query: fewer than the 999 placeholders the oldest SQLite builds accept."""
    rows = []
    for start in range(0, len(upload_ids), 500):
        chunk = upload_ids[start:start + 500]
        rows += db.query(f"SELECT id, updated_at FROM uploads WHERE status = ? AND id IN ({', '.join('?' * len(chunk))})",
                         [PENDING, *chunk])
    return rows


def pending_expired_before(db, moment: datetime, limit: int = 500,
                           after: tuple[str, str] | None = None) -> list[dict]:
    """Pending rows whose upload URL expired before `moment`, soonest expired first, from after
    `after` (page_end(rows, limit, "upload_expires_at"))."""
    condition, values = _after(after, "upload_expires_at")
    return list(db.query(
        f"SELECT * FROM uploads WHERE status = ? AND upload_expires_at < ?{condition}"
        " ORDER BY upload_expires_at, id LIMIT ?",
        [PENDING, timestamp(moment), *values, limit]))
