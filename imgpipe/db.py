"""The uploads table: one row per upload, whose status only ever moves forward.

Every state change is a single conditional UPDATE, so two workers, a duplicated event or a
re-driven job can race without moving a row backwards or overwriting a final state: the
database settles the race, and the UPDATE's rowcount says who won. The same statements run on
SQLite and PostgreSQL (imgpipe.engines). The schema is versioned by MIGRATIONS, which
`imgpipe setup` applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from imgpipe import engines

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
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z: sortable as text, which the sweeper's queries rely on."""
    return moment.astimezone(timezone.utc).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def connect(url: str) -> engines.Database:
    """Open the database shared by the API, the relay and the workers: a DATABASE_URL
    (sqlite:///… or postgresql://…) or a bare SQLite path (DATABASE_PATH)."""
    return engines.connect(url)


@dataclass(frozen=True)
class Migration:
    """One numbered step of the schema, in SQL both engines accept. Add a migration, never
    edit one that shipped: a new column is a new Migration whose apply runs
    `ALTER TABLE uploads ADD COLUMN …`, and its name goes into COLUMNS."""

    version: int
    description: str
    apply: Callable


def _tables_as_before_versioning(db) -> None:
    """The schema as it stood when it was first versioned. A SQLite file from before then
    has these tables already, perhaps without the columns webhooks and formats added."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, filename TEXT, content_type TEXT,"
        " key TEXT NOT NULL, status TEXT NOT NULL, error_code TEXT, error_message TEXT, declared_size BIGINT,"
        " bytes BIGINT, width INTEGER, height INTEGER, format TEXT, attempts INTEGER DEFAULT 0, callback_url TEXT,"
        " callback_state TEXT, formats TEXT, created_at TEXT, updated_at TEXT, upload_expires_at TEXT,"
        " processing_started_at TEXT)")
    present = column_names(db, "uploads")
    for name in ("callback_state", "formats"):
        if name not in present:
            db.execute(f"ALTER TABLE uploads ADD COLUMN {name} TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS idx_uploads_status_updated_at ON uploads (status, updated_at)")
    db.execute("CREATE INDEX IF NOT EXISTS uploads_callback_pending ON uploads (updated_at)"
               " WHERE callback_state = 'pending'")
    db.execute(f"CREATE TABLE IF NOT EXISTS webhook_deliveries (id {db.auto_id}, upload_id TEXT NOT NULL,"
               " attempted_at TEXT NOT NULL, http_status INTEGER, error TEXT)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_upload_id ON webhook_deliveries (upload_id)")


MIGRATIONS = (
    Migration(1, "uploads and webhook deliveries", _tables_as_before_versioning),
)


class SchemaBehind(RuntimeError):
    """The database's schema is older than this code: `imgpipe setup` migrates it."""


def column_names(db, table: str) -> set[str]:
    return {column[0] for column in db.execute(f"SELECT * FROM {table} WHERE 1 = 0").description}


def schema_version(db) -> int:
    """The last migration applied; 0 for an empty database or one from before versioning."""
    if not db.has_table("schema_migrations"):
        return 0
    return db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def ensure_schema(db, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[Migration]:
    """Apply the migrations the database has not had yet, in order and all in one transaction
    that no other migrating process shares; returns those applied (none when it was current)."""
    with db.exclusive():
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                   " (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        current = schema_version(db)
        pending = [migration for migration in migrations if migration.version > current]
        for migration in pending:
            migration.apply(db)
            db.execute("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                       [migration.version, migration.description, timestamp(utcnow())])
    return pending


def require_schema(db, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Refuse to run on a schema this code would misread: the processes never migrate by
    themselves, so hosts starting together never race to change a live database."""
    version, needed = schema_version(db), migrations[-1].version
    if version < needed:
        raise SchemaBehind(f"the {db.engine} database is at schema version {version} and this imgpipe needs"
                           f" {needed}: run `imgpipe setup`, which migrates it in place")


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
    rows = db.query("SELECT * FROM uploads WHERE id = ?", [upload_id])
    return rows[0] if rows else None


def output_formats(row: dict) -> tuple[str, ...]:
    """The formats the derivatives are made in; rows from before formats existed are JPEG only."""
    return tuple((row["formats"] or "jpeg").split(","))


def record_delivery_attempt(db, upload_id: str, *, http_status: int | None, error: str | None) -> int:
    """Note one try at delivering the callback; returns how many tries there have been."""
    db.execute("INSERT INTO webhook_deliveries (upload_id, attempted_at, http_status, error) VALUES (?, ?, ?, ?)",
               [upload_id, timestamp(utcnow()), http_status, error])
    return db.execute("SELECT count(*) FROM webhook_deliveries WHERE upload_id = ?", [upload_id]).fetchone()[0]


def delivery_attempts(db, upload_id: str) -> list[dict]:
    return db.query(
        "SELECT attempted_at, http_status, error FROM webhook_deliveries WHERE upload_id = ? ORDER BY id",
        [upload_id])


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


def in_status_older_than(db, status: str, age: timedelta, limit: int = 500) -> list[dict]:
    """Rows that have been in `status` for longer than `age`, oldest first."""
    cutoff = timestamp(utcnow() - age)
    return db.query(
        "SELECT * FROM uploads WHERE status = ? AND updated_at < ? ORDER BY updated_at LIMIT ?",
        [status, cutoff, limit],
    )


def callbacks_waiting_older_than(db, age: timedelta, limit: int = 500) -> list[dict]:
    """Final rows whose webhook is still pending after `age`: its delivery job may have been
    lost (Redis down when the row became final), so the sweeper asks for it again."""
    cutoff = timestamp(utcnow() - age)
    return db.query(
        "SELECT * FROM uploads WHERE callback_state = 'pending' AND status IN (?, ?) AND updated_at < ?"
        " ORDER BY updated_at LIMIT ?",
        [COMPLETED, FAILED, cutoff, limit],
    )


def count_by_status(db) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(db.execute("SELECT status, count(*) FROM uploads GROUP BY status").fetchall())
    return counts


def processing_seconds(db, bounds: tuple[float, ...]) -> tuple[int, float, list[int]]:
    """Completed uploads' seconds from being claimed to being completed: how many there are,
    the sum of their seconds, and how many took at most each bound (a cumulative histogram)."""
    seconds = db.seconds_between("processing_started_at", "updated_at")
    at_most = ", ".join(f"sum(CASE WHEN {seconds} <= ? THEN 1 ELSE 0 END)" for _ in bounds)
    total, seconds_sum, *cumulative = db.execute(
        f"SELECT count(*), coalesce(sum({seconds}), 0), {at_most} FROM uploads"
        " WHERE status = ? AND processing_started_at IS NOT NULL", [*map(float, bounds), COMPLETED]).fetchone()
    return total, float(seconds_sum), [count or 0 for count in cumulative]
