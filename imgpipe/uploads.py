"""The uploads table: one row per upload, whose status only ever moves forward.

Every state change is a single conditional UPDATE, so two workers, a duplicated event or a
re-driven job can race without moving a row backwards or overwriting a final state: the
database settles the race, and the UPDATE's rowcount says who won. The same statements run on
SQLite and PostgreSQL (imgpipe.engines). The schema is versioned by MIGRATIONS, which
`imgpipe setup` applies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from imgpipe import engines
from imgpipe.keys import derivative_key
from imgpipe.presets import BUILT_IN

PENDING, PROCESSING, COMPLETED, FAILED = "pending", "processing", "completed", "failed"
# Any status may end deleted, and a deleted row stays deleted: its objects are gone, its facts kept.
DELETED = "deleted"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED, DELETED)
# A callback's state: pending until a try is answered 2xx (delivered) or the last try fails;
# skipped, without a try, for an upload whose URL expired unused (unless IMGPIPE_WEBHOOK_EXPIRED).
DELIVERED, SKIPPED = "delivered", "skipped"
CALLBACK_STATES = (PENDING, DELIVERED, FAILED, SKIPPED)
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
    "derivative_bytes": int,
    "deleted_at": str,
    "purged_at": str,
    # What the moderation model said; all null when moderation was off for the upload.
    "moderation_score": float,
    "moderation_flagged": int,
    "moderation_threshold": float,
    "moderation_model": str,
    "moderation_model_version": str,
    "presets": str,  # the preset names the upload asked for, comma-separated; NULL: every preset
    "derivatives": str,  # JSON, what the bucket holds: preset -> format -> its object (derivative_objects)
    "blurhash": str,
    "dominant_color": str,
    "multipart_upload_id": str,  # the store's upload id of an upload sent in parts; NULL: one PUT
    "multipart_part_size": int,
    "multipart_closed_at": str,  # when the store's multipart upload was completed or aborted
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


def _upload_tokens(db) -> None:
    """Browser upload tokens: which one made an upload, and what each token id has used of its caps."""
    db.execute("ALTER TABLE uploads ADD COLUMN upload_token_id TEXT")
    db.execute("CREATE TABLE IF NOT EXISTS upload_tokens (id TEXT PRIMARY KEY, files BIGINT NOT NULL,"
               " bytes BIGINT NOT NULL, expires_at TEXT)")


def _pending_expiry_index(db) -> None:
    """The sweeper takes expired pending rows in order of expiry."""
    db.execute("CREATE INDEX IF NOT EXISTS idx_uploads_status_upload_expires_at ON uploads (status, upload_expires_at)")


def _deletion_and_listing(db) -> None:
    """Deleted uploads (when, and whether their objects are confirmed gone), what derivatives
    weigh, and the indexes of newest-first listing, retention by age and unpurged deletions."""
    for column, kind in (("derivative_bytes", "BIGINT"), ("deleted_at", "TEXT"), ("purged_at", "TEXT")):
        db.execute(f"ALTER TABLE uploads ADD COLUMN {column} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS uploads_created ON uploads (created_at, id)")
    db.execute("CREATE INDEX IF NOT EXISTS uploads_status_created ON uploads (status, created_at, id)")
    db.execute("CREATE INDEX IF NOT EXISTS uploads_unpurged ON uploads (deleted_at)"
               " WHERE purged_at IS NULL AND deleted_at IS NOT NULL")


def _moderation(db) -> None:
    """What the moderation model said of an upload, and the flagged ones found at once."""
    for column, kind in (("moderation_score", "DOUBLE PRECISION"), ("moderation_flagged", "INTEGER"),
                         ("moderation_threshold", "DOUBLE PRECISION"), ("moderation_model", "TEXT"),
                         ("moderation_model_version", "TEXT")):
        db.execute(f"ALTER TABLE uploads ADD COLUMN {column} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS uploads_flagged ON uploads (status, created_at) WHERE moderation_flagged = 1")


def _presets_and_placeholders(db) -> None:
    """Which presets an upload asked for, what the bucket holds of each, and its placeholder."""
    for name in ("presets", "derivatives", "blurhash", "dominant_color"):
        db.execute(f"ALTER TABLE uploads ADD COLUMN {name} TEXT")


def _delivery_errors_as_categories(db) -> None:
    """Tries recorded before deliveries stored a category kept the exception's text, which may
    quote what the receiver sent: each becomes its category's nearest name."""
    db.execute("UPDATE webhook_deliveries SET error = CASE WHEN http_status IS NULL THEN 'connection_failed'"
               " ELSE 'http_status' END WHERE error IS NOT NULL")


def _multipart(db) -> None:
    """Uploads sent in parts: the store's upload id, the size of every part but the last, and when
    the store's upload was closed; the open ones are found by when their time ends."""
    for column, kind in (("multipart_upload_id", "TEXT"), ("multipart_part_size", "BIGINT"),
                         ("multipart_closed_at", "TEXT")):
        db.execute(f"ALTER TABLE uploads ADD COLUMN {column} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS uploads_multipart_open ON uploads (upload_expires_at)"
               " WHERE multipart_upload_id IS NOT NULL AND multipart_closed_at IS NULL")


def _superseded_objects(db) -> None:
    """Derivative objects a reprocess replaced, kept for their URLs until released: the key, whose
    upload it was and since when nothing new points at it. Content-versioned keys need no column:
    each object's version, size and bytes go into the derivatives JSON, and a row stored before
    keeps a plain version there, which names the key it had then."""
    db.execute("CREATE TABLE IF NOT EXISTS superseded_objects (key TEXT PRIMARY KEY, upload_id TEXT NOT NULL,"
               " superseded_at TEXT NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS superseded_objects_at ON superseded_objects (superseded_at)")
    db.execute("CREATE INDEX IF NOT EXISTS superseded_objects_upload ON superseded_objects (upload_id)")


MIGRATIONS = (
    Migration(1, "uploads and webhook deliveries", _tables_as_before_versioning),
    Migration(2, "browser upload tokens", _upload_tokens),
    Migration(3, "pending uploads by expiry", _pending_expiry_index),
    Migration(4, "deleted uploads and listing", _deletion_and_listing),
    Migration(5, "moderation verdicts", _moderation),
    Migration(6, "presets and placeholders", _presets_and_placeholders),
    Migration(7, "webhook errors as categories", _delivery_errors_as_categories),
    Migration(8, "multipart uploads", _multipart),
    Migration(9, "content-versioned derivatives", _superseded_objects),
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
                  upload_expires_at: datetime, formats: tuple[str, ...] = ("jpeg",),
                  upload_token_id: str | None = None, presets: tuple[str, ...] | None = None,
                  multipart_upload_id: str | None = None, multipart_part_size: int | None = None) -> dict:
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
        "presets": ",".join(presets) if presets is not None else None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "upload_expires_at": timestamp(upload_expires_at),
        "upload_token_id": upload_token_id,
        "multipart_upload_id": multipart_upload_id,
        "multipart_part_size": multipart_part_size,
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
    rows = db.query("SELECT * FROM uploads WHERE id = ?", [upload_id])
    return rows[0] if rows else None


def output_formats(row: dict) -> tuple[str, ...]:
    """The formats the derivatives are made in; rows from before formats existed are JPEG only."""
    return tuple((row["formats"] or "jpeg").split(","))


def requested_presets(row: dict) -> tuple[str, ...] | None:
    """The presets the upload asked for; None when it named none (it gets every preset)."""
    return tuple(row["presets"].split(",")) if row["presets"] else None


@dataclass(frozen=True)
class DerivativeObject:
    """One derivative in the bucket: its key, and its pixel size and length when the row recorded
    them (rows stored before content-versioned keys did not: None)."""

    key: str
    width: int | None
    height: int | None
    bytes: int | None


def derivative_entry(version: str, content: str, width: int, height: int, size: int) -> dict:
    """What the row records of one object it names: the recipe's version (imgpipe.presets, which
    says whether it is out of date), the content version its key carries (imgpipe.keys), its
    pixel size and its length."""
    return {"version": version, "content": content, "width": width, "height": height, "bytes": size}


def derivative_record(row: dict) -> dict[str, dict[str, dict | str]]:
    """The row's derivatives JSON: preset -> format -> derivative_entry, or, for objects stored
    before keys carried a content version, the recipe's version alone.

    Uploads completed before even that was recorded have the built-in three in their formats, made
    as the built-in presets make them.
    """
    if row["derivatives"]:
        return json.loads(row["derivatives"])
    return BUILT_IN.versions(None, output_formats(row)) if row["status"] == COMPLETED else {}


def derivative_objects(row: dict) -> dict[str, dict[str, DerivativeObject]]:
    """The one way from a row to its derivatives' keys: preset -> format -> DerivativeObject.

    An object recorded with a content version is named by it; one recorded before keys carried
    one keeps the key it was written under (<preset>/<id>.<ext>), with no size recorded.
    """
    objects = {}
    for preset, by_format in derivative_record(row).items():
        objects[preset] = {}
        for fmt, entry in by_format.items():
            if isinstance(entry, str):
                objects[preset][fmt] = DerivativeObject(derivative_key(preset, row["id"], fmt), None, None, None)
            else:
                objects[preset][fmt] = DerivativeObject(derivative_key(preset, row["id"], fmt, entry["content"]),
                                                        entry["width"], entry["height"], entry["bytes"])
    return objects


def derivative_keys(row: dict) -> list[str]:
    """Every key the row's record names."""
    return [obj.key for by_format in derivative_objects(row).values() for obj in by_format.values()]


def stored_derivatives(row: dict) -> dict[str, dict[str, str]]:
    """What the bucket holds for the upload by recipe: preset -> format -> the version of the
    preset that made it, which `imgpipe reprocess` compares with the presets in use."""
    return {preset: {fmt: entry if isinstance(entry, str) else entry["version"] for fmt, entry in by_format.items()}
            for preset, by_format in derivative_record(row).items()}


def supersede(db, upload_id: str, keys: list[str]) -> None:
    """Note that nothing new will point at these objects of the upload from now on: the release
    step (processor.release) removes them once the grace has passed and no row names them. A key
    superseded again (its bytes were made anew, then replaced again) counts from now."""
    now = timestamp(utcnow())
    for key in keys:
        db.execute("INSERT INTO superseded_objects (key, upload_id, superseded_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (key) DO UPDATE SET superseded_at = excluded.superseded_at", [key, upload_id, now])


def superseded_keys(db, upload_id: str) -> list[str]:
    """The upload's objects that were superseded and not released yet."""
    return [row["key"] for row in db.query("SELECT key FROM superseded_objects WHERE upload_id = ?", [upload_id])]


def superseded_before(db, cutoff: datetime, limit: int) -> list[dict]:
    """Superseded objects (key, upload_id) superseded before `cutoff`, longest ago first."""
    return db.query("SELECT key, upload_id FROM superseded_objects WHERE superseded_at < ?"
                    " ORDER BY superseded_at LIMIT ?", [timestamp(cutoff), limit])


def forget_superseded(db, keys: list[str]) -> None:
    """Drop these keys from the superseded objects: released, or in use again."""
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        db.execute(f"DELETE FROM superseded_objects WHERE key IN ({', '.join('?' * len(chunk))})", chunk)


def record_delivery_attempt(db, upload_id: str, *, http_status: int | None, error: str | None,
                            since: str = "") -> int:
    """Note one try at delivering the callback; returns how many tries there have been (since
    `since`, when the callback was asked for again: a deletion announces itself afresh)."""
    db.execute("INSERT INTO webhook_deliveries (upload_id, attempted_at, http_status, error) VALUES (?, ?, ?, ?)",
               [upload_id, timestamp(utcnow()), http_status, error])
    return db.execute("SELECT count(*) FROM webhook_deliveries WHERE upload_id = ? AND attempted_at >= ?",
                      [upload_id, since]).fetchone()[0]


def delivery_attempts(db, upload_id: str) -> list[dict]:
    return db.query(
        "SELECT attempted_at, http_status, error FROM webhook_deliveries WHERE upload_id = ? ORDER BY id",
        [upload_id])


def finish_callback(db, upload_id: str, state: str, *, deleted_at: str | None = None) -> bool:
    """Move a pending callback to delivered, failed or skipped; a final one never changes again.

    `deleted_at` is the row's as the delivered record showed it: a row deleted since then keeps
    its callback pending, so the deletion is announced as well.
    """
    cursor = db.execute(
        "UPDATE uploads SET callback_state = ? WHERE id = ? AND callback_state = ? AND COALESCE(deleted_at, '') = ?",
        [state, upload_id, PENDING, deleted_at or ""])
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


def flagged_counts(db) -> dict[str, int]:
    """How many uploads the moderation model flagged, by status (completed in flag mode, failed in
    reject mode); the partial index on flagged rows keeps this off the rest of the table."""
    return dict(db.execute(
        "SELECT status, count(*) FROM uploads WHERE moderation_flagged = 1 GROUP BY status").fetchall())


# A verdict's columns, each left as it is when the UPDATE carries none (moderation off).
_MODERATION_COLUMNS = ("score", "flagged", "threshold", "model", "model_version")
_MODERATION_SET = ", ".join(f"moderation_{name} = COALESCE(?, moderation_{name})" for name in _MODERATION_COLUMNS)


def _moderation_values(moderation: dict | None) -> list:
    if moderation is None:
        return [None] * len(_MODERATION_COLUMNS)
    return [int(moderation[name]) if name == "flagged" else moderation[name] for name in _MODERATION_COLUMNS]


def mark_completed(db, upload_id: str, *, size: int, width: int, height: int, image_format: str,
                   derivatives: dict[str, dict] | None = None, derivative_bytes: int | None = None,
                   blurhash: str | None = None, dominant_color: str | None = None, moderation: dict | None = None,
                   from_status: str = PROCESSING) -> bool:
    """Complete a row being processed, with everything its job learnt in the same UPDATE: what
    the derivatives weigh and the moderation verdict (`moderation`: the columns without their
    prefix), so a completed row never lacks them. `from_status=FAILED` is for `imgpipe
    reprocess`, which may re-try an upload that failed (after a limit was raised, say) and
    complete it."""
    cursor = db.execute(
        "UPDATE uploads SET status = ?, bytes = ?, width = ?, height = ?, format = ?, derivatives = ?,"
        " derivative_bytes = ?, blurhash = ?, dominant_color = ?, error_code = NULL, error_message = NULL,"
        f" updated_at = ?, {_MODERATION_SET} WHERE id = ? AND status = ?",
        [COMPLETED, size, width, height, image_format, _json_or_none(derivatives), derivative_bytes, blurhash,
         dominant_color, timestamp(utcnow()), *_moderation_values(moderation), upload_id, from_status],
    )
    return cursor.rowcount == 1


def record_reprocessed(db, upload_id: str, derivatives: dict[str, dict], *, derivative_bytes: int,
                       blurhash: str | None = None, dominant_color: str | None = None) -> bool:
    """Note what a completed upload's objects are after a reprocess, and what they weigh; its
    placeholder too when one was made again. The status stays completed, and updated_at is left
    alone: nothing a client polls for has changed."""
    cursor = db.execute(
        "UPDATE uploads SET derivatives = ?, derivative_bytes = ?, blurhash = COALESCE(?, blurhash),"
        " dominant_color = COALESCE(?, dominant_color) WHERE id = ? AND status = ?",
        [json.dumps(derivatives), derivative_bytes, blurhash, dominant_color, upload_id, COMPLETED],
    )
    return cursor.rowcount == 1


def replace_failure(db, upload_id: str, code: str, message: str, *, moderation: dict | None = None) -> bool:
    """A failed upload tried again by `imgpipe reprocess` that failed again: the newer reason
    (and the verdict, when moderation refused it this time)."""
    cursor = db.execute(f"UPDATE uploads SET error_code = ?, error_message = ?, {_MODERATION_SET}"
                        " WHERE id = ? AND status = ?",
                        [code, message, *_moderation_values(moderation), upload_id, FAILED])
    return cursor.rowcount == 1


def final_uploads(db, statuses: tuple[str, ...], *, created_from: str | None = None,
                  created_before: str | None = None, after: tuple[str, str] | None = None,
                  limit: int = 500) -> list[dict]:
    """Uploads in `statuses`, created in [created_from, created_before), oldest first, a page at a
    time: pass the last row's (created_at, id) as `after` for the next page."""
    where = [f"status IN ({', '.join('?' * len(statuses))})"]
    values: list = list(statuses)
    if created_from:
        where.append("created_at >= ?")
        values.append(created_from)
    if created_before:
        where.append("created_at < ?")
        values.append(created_before)
    condition, after_values = keyset(after, "created_at")
    return list(db.query(f"SELECT * FROM uploads WHERE {' AND '.join(where)}{condition} ORDER BY created_at, id LIMIT ?",
                         [*values, *after_values, limit]))


def _json_or_none(value) -> str | None:
    return None if value is None else json.dumps(value)


def mark_failed(db, upload_id: str, code: str, message: str, *, size: int | None = None,
                moderation: dict | None = None) -> bool:
    """Fail a row that is not final yet: from processing (a job) or pending (the sweeper); a job
    that moderation refused records the verdict in the same UPDATE."""
    cursor = db.execute(
        "UPDATE uploads SET status = ?, error_code = ?, error_message = ?,"
        f" bytes = COALESCE(?, bytes), updated_at = ?, {_MODERATION_SET} WHERE id = ? AND status IN (?, ?)",
        [FAILED, code, message, size, timestamp(utcnow()), *_moderation_values(moderation), upload_id, PENDING,
         PROCESSING],
    )
    return cursor.rowcount == 1


def in_status_older_than(db, status: str, age: timedelta, limit: int = 500,
                         after: tuple[str, str] | None = None) -> list[dict]:
    """Rows that have been in `status` for longer than `age`, oldest first, from after `after`."""
    cutoff = timestamp(utcnow() - age)
    condition, values = keyset(after, "updated_at")
    return db.query(
        f"SELECT * FROM uploads WHERE status = ? AND updated_at < ?{condition} ORDER BY updated_at, id LIMIT ?",
        [status, cutoff, *values, limit],
    )


def callbacks_owed(db, age: timedelta, limit: int = 500, after: tuple[str, str] | None = None) -> list[dict]:
    """Rows whose webhook is still pending and due: final ones after `age` (their delivery job
    may have been lost, Redis down when the row became final) and deleted ones at once (a
    deletion is announced by the sweeper). Through the partial index of pending callbacks."""
    cutoff = timestamp(utcnow() - age)
    condition, values = keyset(after, "updated_at")
    return db.query(
        "SELECT * FROM uploads WHERE callback_state = 'pending'"
        " AND (status = ? OR (status IN (?, ?) AND updated_at < ?))"
        f"{condition} ORDER BY updated_at, id LIMIT ?",
        [DELETED, COMPLETED, FAILED, cutoff, *values, limit],
    )


def page_end(rows: list[dict], limit: int, column: str = "updated_at") -> tuple[str, str] | None:
    """Where the next page of a query ordered by (column, id) starts (its `after`): past this
    page's last row, or from the beginning again when this page was the last. Taking rows a
    page at a time this way, a sweep reaches every matching row in turn however many there are."""
    return (rows[-1][column], rows[-1]["id"]) if len(rows) == limit else None


def keyset(after: tuple[str, str] | None, column: str, *, descending: bool = False) -> tuple[str, list]:
    """The condition (" AND …") and its values that take a query ordered by (column, id), or
    (column DESC, id DESC), on from after the row whose (column, id) is `after`: the one way
    every page of rows is taken. A keyset, not an OFFSET: a page costs the same however deep it
    is, and the leading bound on `column` keeps it on the index."""
    if after is None:
        return "", []
    value, upload_id = after
    beyond = "<" if descending else ">"
    return f" AND {column} {beyond}= ? AND ({column} {beyond} ? OR id {beyond} ?)", [value, value, upload_id]


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
    condition, values = keyset(after, "upload_expires_at")
    return db.query(
        f"SELECT * FROM uploads WHERE status = ? AND upload_expires_at < ?{condition}"
        " ORDER BY upload_expires_at, id LIMIT ?",
        [PENDING, timestamp(moment), *values, limit])


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


def mark_deleted(db, upload_id: str) -> dict | None:
    """Move a row to deleted from whatever it was, and ask for its webhook again when it has one.

    Returns the row as it was just before (its status says whether a job may still be writing),
    the row itself when it was already deleted, or None for an unknown id. A compare-and-set on
    the status read, tried again when a job moved the row in between.
    """
    while True:
        row = get_upload(db, upload_id)
        if row is None or row["status"] == DELETED:
            return row
        now = timestamp(utcnow())
        cursor = db.execute(
            "UPDATE uploads SET status = ?, deleted_at = ?, updated_at = ?,"
            " callback_state = CASE WHEN callback_url IS NULL THEN callback_state ELSE ? END"
            " WHERE id = ? AND status = ?",
            [DELETED, now, now, PENDING, upload_id, row["status"]],
        )
        if cursor.rowcount == 1:
            return row


def mark_purged(db, upload_id: str) -> None:
    """Note that a deleted row's objects are all gone, so the sweeper stops removing them."""
    db.execute("UPDATE uploads SET purged_at = ? WHERE id = ? AND status = ?",
               [timestamp(utcnow()), upload_id, DELETED])


def unpurged_deleted_before(db, cutoff: datetime, limit: int = 100) -> list[dict]:
    """Deleted rows whose objects were not confirmed gone, deleted before `cutoff`, oldest first.

    Asked by deleted_at (set only on deleted rows), not status, so the small partial index
    answers it rather than the index of every deleted row.
    """
    return db.query(
        "SELECT * FROM uploads WHERE purged_at IS NULL AND deleted_at IS NOT NULL AND deleted_at < ?"
        " ORDER BY deleted_at LIMIT ?",
        [timestamp(cutoff), limit],
    )


def created_before(db, cutoff: datetime, limit: int = 100) -> list[dict]:
    """Rows not deleted yet that were created before `cutoff` (any order: retention takes them all)."""
    live = [PENDING, PROCESSING, COMPLETED, FAILED]
    return db.query(
        f"SELECT * FROM uploads WHERE status IN ({', '.join('?' * len(live))}) AND created_at < ? LIMIT ?",
        [*live, timestamp(cutoff), limit],
    )


def list_uploads(db, *, status: str | None, limit: int, after: tuple[str, str] | None = None,
                 flagged: bool = False) -> list[dict]:
    """Newest first, by (created_at, id); `after` is the (created_at, id) of the last row of the
    page before. Without a status, every row but the deleted ones; `flagged`, only the rows the
    moderation model flagged.

    Rows created meanwhile sort before the first page, never into a later one (`keyset`).
    """
    where, params = ("status = ?", [status]) if status else ("status <> ?", [DELETED])
    if flagged:
        where += " AND moderation_flagged = 1"
    condition, after_values = keyset(after, "created_at", descending=True)
    return db.query(f"SELECT * FROM uploads WHERE {where}{condition} ORDER BY created_at DESC, id DESC LIMIT ?",
                    [*params, *after_values, limit])


def open_multipart_to_abort(db, expired_before: datetime, limit: int) -> list[dict]:
    """Uploads in parts whose store upload is still open although nobody will complete it: the
    row is no longer pending, or its time ended before `expired_before`."""
    return db.query(
        "SELECT * FROM uploads WHERE multipart_upload_id IS NOT NULL AND multipart_closed_at IS NULL"
        " AND (status <> ? OR upload_expires_at < ?) ORDER BY upload_expires_at LIMIT ?",
        [PENDING, timestamp(expired_before), limit])


def close_multipart(db, upload_id: str) -> None:
    """Note that the store's multipart upload was completed or aborted: nothing is left to abort."""
    db.execute("UPDATE uploads SET multipart_closed_at = ? WHERE id = ? AND multipart_closed_at IS NULL",
               [timestamp(utcnow()), upload_id])


def rows_by_id(db, upload_ids: list[str]) -> dict[str, dict]:
    """id -> row for those of `upload_ids` that exist, in one query per 500 ids."""
    found = {}
    for start in range(0, len(upload_ids), 500):
        chunk = upload_ids[start:start + 500]
        for row in db.query(f"SELECT * FROM uploads WHERE id IN ({', '.join('?' * len(chunk))})", chunk):
            found[row["id"]] = row
    return found


def stored_bytes(db) -> tuple[int, int]:
    """Bytes in the bucket for completed uploads: (originals, derivatives). Other rows hold none
    for long: pending and processing ones are not measured yet, failed and deleted ones are removed."""
    originals, derivatives = db.execute(
        "SELECT coalesce(sum(bytes), 0), coalesce(sum(derivative_bytes), 0) FROM uploads WHERE status = ?",
        [COMPLETED]).fetchone()
    return originals, derivatives
