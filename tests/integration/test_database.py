"""The uploads table on both engines, real ones: SQLite files and a throwaway PostgreSQL server.

The same statements must give the same guarantees on each: status only moves forward, a race
between processes is settled by the database (one conditional UPDATE wins), and the schema is
migrated in place, a file from before it was versioned included, without losing a row.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from imgpipe import db as uploads
from imgpipe.engines import DatabaseUnavailable
from imgpipe.stack import free_port
from stacks import ENGINES

BEFORE_VERSIONING = Path(__file__).parent.parent / "fixtures" / "sqlite_before_versioning.sql"


@pytest.fixture(params=ENGINES)
def database_url(request, tmp_path, databases):
    return databases.url(request.param) or f"sqlite:///{tmp_path / 'imgpipe.db'}"


@pytest.fixture
def database(database_url):
    database = uploads.connect(database_url)
    uploads.ensure_schema(database)
    yield database
    database.close()


def new_row(database, upload_id="a" * 32, **overrides):
    values = dict(upload_id=upload_id, filename="a.jpg", content_type="image/jpeg", key=f"originals/{upload_id}.jpg",
                  declared_size=None, callback_url=None, upload_expires_at=uploads.utcnow() + timedelta(minutes=15))
    return uploads.insert_upload(database, **{**values, **overrides})


def test_a_new_row_is_pending(database):
    row = new_row(database, declared_size=5_000_000_000)
    assert row["status"] == "pending"
    assert uploads.get_upload(database, row["id"]) == row
    assert uploads.get_upload(database, "f" * 32) is None


def test_status_only_moves_forward(database):
    row = new_row(database)
    claimed = uploads.claim_for_processing(database, row["id"])
    assert (claimed["status"], claimed["attempts"]) == ("processing", 1)
    assert uploads.claim_for_processing(database, row["id"])["attempts"] == 2
    uploads.release_attempt(database, row["id"])
    assert uploads.get_upload(database, row["id"])["attempts"] == 1
    assert uploads.mark_completed(database, row["id"], size=10, width=2, height=3, image_format="JPEG")
    assert uploads.claim_for_processing(database, row["id"]) is None
    assert not uploads.mark_failed(database, row["id"], "internal", "late failure")
    assert not uploads.mark_completed(database, row["id"], size=1, width=1, height=1, image_format="PNG")
    final = uploads.get_upload(database, row["id"])
    assert (final["status"], final["width"], final["error_code"], final["attempts"]) == ("completed", 2, None, 1)


def test_completed_needs_processing_first(database):
    row = new_row(database)
    assert not uploads.mark_completed(database, row["id"], size=1, width=1, height=1, image_format="PNG")
    assert uploads.get_upload(database, row["id"])["status"] == "pending"


def test_a_failed_row_keeps_its_code(database):
    row = new_row(database)
    assert uploads.mark_failed(database, row["id"], "upload_expired", "never uploaded")
    assert uploads.claim_for_processing(database, row["id"]) is None
    final = uploads.get_upload(database, row["id"])
    assert (final["status"], final["error_code"]) == ("failed", "upload_expired")


def test_processes_racing_to_finish_one_row_are_settled_by_the_database(database_url, database):
    """Eight connections at once, half completing and half failing the same claimed row:
    exactly one UPDATE wins, and the row says what the winner wrote."""
    row = new_row(database)
    uploads.claim_for_processing(database, row["id"])
    connections = [uploads.connect(database_url) for _ in range(8)]
    start = threading.Barrier(len(connections))
    won: dict[int, bool] = {}

    def finish(index: int) -> None:
        start.wait()
        if index % 2:
            won[index] = uploads.mark_failed(connections[index], row["id"], "internal", f"racer {index}")
        else:
            won[index] = uploads.mark_completed(connections[index], row["id"], size=index, width=1, height=1,
                                                image_format="JPEG")

    racers = [threading.Thread(target=finish, args=(index,)) for index in range(len(connections))]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    for connection in connections:
        connection.close()

    [winner] = [index for index, success in won.items() if success]
    final = uploads.get_upload(database, row["id"])
    if winner % 2:
        assert (final["status"], final["error_message"]) == ("failed", f"racer {winner}")
    else:
        assert (final["status"], final["bytes"]) == ("completed", winner)


def test_age_queries_find_old_rows_only(database):
    new_row(database, "a" * 32)
    assert uploads.in_status_older_than(database, "pending", timedelta(seconds=60)) == []
    assert [r["id"] for r in uploads.in_status_older_than(database, "pending", timedelta(seconds=-1))] == ["a" * 32]
    uploads.claim_for_processing(database, "a" * 32)
    assert [r["id"] for r in uploads.in_status_older_than(database, "processing", timedelta(seconds=-1))] == ["a" * 32]


def test_formats_are_stored_and_default_to_jpeg(database):
    assert uploads.output_formats(new_row(database)) == ("jpeg",)
    row = new_row(database, "b" * 32, filename="a.png", content_type="image/png", formats=("png", "webp"))
    assert uploads.output_formats(uploads.get_upload(database, row["id"])) == ("png", "webp")


def test_a_callback_is_pending_until_it_is_delivered_or_failed_and_then_stays(database):
    assert new_row(database)["callback_state"] is None
    row = new_row(database, "c" * 32, callback_url="https://hooks.example.com/in")
    assert uploads.get_upload(database, row["id"])["callback_state"] == "pending"
    assert uploads.record_delivery_attempt(database, row["id"], http_status=500, error="answered HTTP 500") == 1
    assert uploads.record_delivery_attempt(database, row["id"], http_status=204, error=None) == 2
    assert uploads.finish_callback(database, row["id"], uploads.DELIVERED)
    assert not uploads.finish_callback(database, row["id"], uploads.FAILED)
    assert uploads.get_upload(database, row["id"])["callback_state"] == "delivered"
    attempts = uploads.delivery_attempts(database, row["id"])
    assert [(a["http_status"], a["error"]) for a in attempts] == [(500, "answered HTTP 500"), (204, None)]
    assert attempts[0]["attempted_at"] <= attempts[1]["attempted_at"]


def test_final_rows_with_a_pending_callback_are_found_until_it_is_settled(database):
    hooked = new_row(database, "b" * 32, callback_url="https://example.com/hook")
    new_row(database)
    waiting = timedelta(seconds=-1)
    assert uploads.callbacks_waiting_older_than(database, waiting) == []
    for row in (hooked, {"id": "a" * 32}):
        uploads.claim_for_processing(database, row["id"])
        uploads.mark_completed(database, row["id"], size=1, width=1, height=1, image_format="PNG")
    assert [r["id"] for r in uploads.callbacks_waiting_older_than(database, waiting)] == ["b" * 32]
    assert uploads.callbacks_waiting_older_than(database, timedelta(seconds=60)) == []
    assert uploads.finish_callback(database, "b" * 32, uploads.DELIVERED)
    assert uploads.callbacks_waiting_older_than(database, waiting) == []


def test_counts_and_processing_seconds_for_metrics(database):
    for upload_id, seconds in (("a" * 32, "00.040"), ("b" * 32, "00.400"), ("c" * 32, "03.000")):
        new_row(database, upload_id)
        uploads.claim_for_processing(database, upload_id)
        uploads.mark_completed(database, upload_id, size=1, width=1, height=1, image_format="JPEG")
        database.execute("UPDATE uploads SET processing_started_at = ?, updated_at = ? WHERE id = ?",
                         ["2026-01-01T23:59:59.000000Z", f"2026-01-02T00:00:{seconds}000Z", upload_id])
    new_row(database, "d" * 32)
    assert uploads.count_by_status(database) == {"pending": 1, "processing": 0, "completed": 3, "failed": 0}
    total, seconds_sum, cumulative = uploads.processing_seconds(database, (0.5, 1.5, 5.0))
    assert (total, cumulative) == (3, [0, 2, 3])
    assert seconds_sum == pytest.approx(1.04 + 1.4 + 4.0, abs=1e-3)


def test_the_migrated_schema_has_every_column_the_code_writes(database):
    """A column added to COLUMNS without a migration fails here, on both engines."""
    assert uploads.column_names(database, "uploads") == set(uploads.COLUMNS)
    assert uploads.schema_version(database) == uploads.MIGRATIONS[-1].version


def test_migrations_are_applied_once_in_order_and_a_failing_one_changes_nothing(database):
    def add_column(db):
        db.execute("ALTER TABLE uploads ADD COLUMN label TEXT")

    def add_and_fail(db):
        db.execute("ALTER TABLE uploads ADD COLUMN half_done TEXT")
        db.execute("SELECT * FROM no_such_table")

    later = (*uploads.MIGRATIONS, uploads.Migration(uploads.MIGRATIONS[-1].version + 1, "a label", add_column))
    with pytest.raises(uploads.SchemaBehind, match="imgpipe setup"):
        uploads.require_schema(database, later)
    assert [migration.description for migration in uploads.ensure_schema(database, later)] == ["a label"]
    assert uploads.ensure_schema(database, later) == []
    uploads.require_schema(database, later)
    assert "label" in uploads.column_names(database, "uploads")

    broken = (*later, uploads.Migration(later[-1].version + 1, "broken", add_and_fail))
    with pytest.raises(Exception, match="no_such_table"):
        uploads.ensure_schema(database, broken)
    assert uploads.schema_version(database) == later[-1].version
    assert "half_done" not in uploads.column_names(database, "uploads")


def test_processes_migrating_at_once_take_turns(database_url):
    connections = [uploads.connect(database_url) for _ in range(4)]
    start = threading.Barrier(len(connections))
    applied: list[list] = []

    def migrate(connection):
        start.wait()
        applied.append(uploads.ensure_schema(connection))

    threads = [threading.Thread(target=migrate, args=(connection,)) for connection in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(len(migrations) for migrations in applied) == [0, 0, 0, len(uploads.MIGRATIONS)]
    versions = connections[0].query("SELECT version FROM schema_migrations ORDER BY version")
    assert [row["version"] for row in versions] == [migration.version for migration in uploads.MIGRATIONS]
    for connection in connections:
        connection.close()


def sqlite_rows(path: Path, table: str) -> list[dict]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(f"SELECT * FROM {table} ORDER BY rowid")]


def test_a_sqlite_file_from_before_versioning_upgrades_in_place_without_losing_a_row(tmp_path):
    path = tmp_path / "imgpipe.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(BEFORE_VERSIONING.read_text())
    before = {table: sqlite_rows(path, table) for table in ("uploads", "webhook_deliveries")}
    assert len(before["uploads"]) == 6 and len(before["webhook_deliveries"]) == 2

    database = uploads.connect(f"sqlite:///{path}")
    with pytest.raises(uploads.SchemaBehind, match="version 0 .* run `imgpipe setup`"):
        uploads.require_schema(database)
    assert [migration.version for migration in uploads.ensure_schema(database)] == [1]
    uploads.require_schema(database)
    assert {table: sqlite_rows(path, table) for table in before} == before

    assert uploads.claim_for_processing(database, "a" * 32)["attempts"] == 1
    assert uploads.mark_completed(database, "b" * 32, size=1, width=1, height=1, image_format="JPEG")
    assert uploads.record_delivery_attempt(database, "e" * 32, http_status=204, error=None) == 3
    assert [a["http_status"] for a in uploads.delivery_attempts(database, "e" * 32)] == [503, 204, 204]
    assert uploads.get_upload(database, "f" * 32)["formats"] == "png,webp"
    assert uploads.ensure_schema(database) == []
    database.close()


def test_a_sqlite_file_from_before_webhooks_and_formats_gains_their_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE uploads (id TEXT PRIMARY KEY, filename TEXT, content_type TEXT, key TEXT NOT NULL,"
            " status TEXT NOT NULL, error_code TEXT, error_message TEXT, declared_size INTEGER, bytes INTEGER,"
            " width INTEGER, height INTEGER, format TEXT, attempts INTEGER DEFAULT 0, callback_url TEXT,"
            " created_at TEXT, updated_at TEXT, upload_expires_at TEXT, processing_started_at TEXT)")
        connection.execute("INSERT INTO uploads (id, key, status) VALUES (?, 'originals/x.jpg', 'pending')", ["d" * 32])
    database = uploads.connect(str(path))
    uploads.ensure_schema(database)
    row = uploads.get_upload(database, "d" * 32)
    assert (row["formats"], uploads.output_formats(row), row["attempts"]) == (None, ("jpeg",), 0)
    assert uploads.record_delivery_attempt(database, "d" * 32, http_status=None, error="refused") == 1
    assert uploads.column_names(database, "uploads") == set(uploads.COLUMNS)


def test_a_postgresql_connection_the_server_dropped_is_replaced_at_the_next_call(databases):
    url = databases.url("postgresql")
    database, admin = uploads.connect(url), uploads.connect(url)
    uploads.ensure_schema(database)
    new_row(database)
    backend = database.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert admin.execute("SELECT pg_terminate_backend(?)", [backend]).fetchone()[0]

    with pytest.raises(DatabaseUnavailable):
        uploads.get_upload(database, "a" * 32)
    assert uploads.get_upload(database, "a" * 32)["status"] == "pending"
    assert database.execute("SELECT pg_backend_pid()").fetchone()[0] != backend
    admin.close()
    database.close()


def test_a_postgresql_server_that_does_not_answer_is_unavailable_not_a_crash():
    with pytest.raises(DatabaseUnavailable):
        uploads.connect(f"postgresql://imgpipe:wrong@127.0.0.1:{free_port()}/imgpipe?connect_timeout=2")
