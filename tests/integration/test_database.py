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

from api import create_app
from imgpipe import uploads
from imgpipe.engines import DatabaseUnavailable
from cli.stack import free_port
from stacks import ENGINES, stack_settings

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
    assert uploads.record_delivery_attempt(database, row["id"], http_status=500, error="http_status") == 1
    assert uploads.record_delivery_attempt(database, row["id"], http_status=204, error=None) == 2
    assert uploads.finish_callback(database, row["id"], uploads.DELIVERED)
    assert not uploads.finish_callback(database, row["id"], uploads.FAILED)
    assert uploads.get_upload(database, row["id"])["callback_state"] == "delivered"
    attempts = uploads.delivery_attempts(database, row["id"])
    assert [(a["http_status"], a["error"]) for a in attempts] == [(500, "http_status"), (204, None)]
    assert attempts[0]["attempted_at"] <= attempts[1]["attempted_at"]


def test_final_rows_with_a_pending_callback_are_found_until_it_is_settled(database):
    hooked = new_row(database, "b" * 32, callback_url="https://example.com/hook")
    new_row(database)
    waiting = timedelta(seconds=-1)
    assert uploads.callbacks_owed(database, waiting) == []
    for row in (hooked, {"id": "a" * 32}):
        uploads.claim_for_processing(database, row["id"])
        uploads.mark_completed(database, row["id"], size=1, width=1, height=1, image_format="PNG")
    assert [r["id"] for r in uploads.callbacks_owed(database, waiting)] == ["b" * 32]
    assert uploads.callbacks_owed(database, timedelta(seconds=60)) == []
    assert uploads.finish_callback(database, "b" * 32, uploads.DELIVERED)
    assert uploads.callbacks_owed(database, waiting) == []


def test_counts_and_processing_seconds_for_metrics(database):
    for upload_id, seconds in (("a" * 32, "00.040"), ("b" * 32, "00.400"), ("c" * 32, "03.000")):
        new_row(database, upload_id)
        uploads.claim_for_processing(database, upload_id)
        uploads.mark_completed(database, upload_id, size=1, width=1, height=1, image_format="JPEG")
        database.execute("UPDATE uploads SET processing_started_at = ?, updated_at = ? WHERE id = ?",
                         ["2026-01-01T23:59:59.000000Z", f"2026-01-02T00:00:{seconds}000Z", upload_id])
    new_row(database, "d" * 32)
    assert uploads.count_by_status(database) == {"pending": 1, "processing": 0, "completed": 3, "failed": 0, "deleted": 0}
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
    assert [migration.version for migration in uploads.ensure_schema(database)] == [
        migration.version for migration in uploads.MIGRATIONS]
    uploads.require_schema(database)
    after = {table: sqlite_rows(path, table) for table in before}
    # The one value rewritten: a try's error text becomes its category (it may quote the receiver).
    expected = {**before, "webhook_deliveries": [
        {**row, "error": row["error"] and ("http_status" if row["http_status"] is not None else "connection_failed")}
        for row in before["webhook_deliveries"]]}
    assert {table: [{column: row[column] for column in old} for row, old in zip(after[table], before[table])]
            for table in before} == expected, "every row keeps every value it had; later columns are only added"
    assert all(len(after[table]) == len(before[table]) for table in before)

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


def test_an_upload_token_is_charged_up_to_its_caps_and_never_past_them(database):
    expires_at = uploads.utcnow() + timedelta(minutes=10)

    def charge(token_id, files, size, max_files=None, max_bytes=None):
        return uploads.charge_upload_token(database, token_id, expires_at, files=files, size=size,
                                           max_files=max_files, max_bytes=max_bytes)

    assert charge("t1", 2, 100, max_files=3)
    assert not charge("t1", 2, 100, max_files=3)  # 4 > 3: nothing counted
    assert charge("t1", 1, 100, max_files=3)
    assert not charge("t1", 1, 0, max_files=3)
    assert charge("t2", 1, 600, max_bytes=1000)
    assert not charge("t2", 1, 401, max_bytes=1000)
    assert charge("t2", 1, 400, max_files=2, max_bytes=1000)
    assert not charge("t2", 1, 0, max_files=2, max_bytes=1000)
    counts = {row["id"]: (row["files"], row["bytes"]) for row in database.query("SELECT * FROM upload_tokens")}
    assert counts == {"t1": (3, 200), "t2": (2, 1000)}


def test_an_upload_remembers_the_upload_token_it_was_made_with(database):
    row = uploads.insert_upload(database, upload_id="d" * 32, filename="a.jpg", content_type="image/jpeg",
                                key=f"originals/{'d' * 32}.jpg", declared_size=5, callback_url=None,
                                upload_expires_at=uploads.utcnow() + timedelta(minutes=15), upload_token_id="visitor-7")
    assert row["upload_token_id"] == "visitor-7"
    assert uploads.get_upload(database, "d" * 32)["upload_token_id"] == "visitor-7"
    assert new_row(database)["upload_token_id"] is None


def test_rows_are_taken_a_page_at_a_time_in_turn_until_every_one_was_reached(database):
    ids = [f"{index:032x}" for index in range(7)]
    for upload_id in ids:
        new_row(database, upload_id)
    reached, after, pages = [], None, 0
    while True:
        page = uploads.in_status_older_than(database, "pending", timedelta(seconds=-1), 3, after=after)
        reached += [row["id"] for row in page]
        pages += 1
        after = uploads.page_end(page, 3)
        if after is None:
            break
    assert (sorted(reached), len(reached), pages) == (ids, 7, 3)
    assert [row["id"] for row in uploads.in_status_older_than(database, "pending", timedelta(seconds=-1), 3)] == ids[:3]


def test_waiting_callbacks_are_taken_in_turn_too(database):
    for index in range(3):
        upload_id = f"{index:032x}"
        uploads.insert_upload(database, upload_id=upload_id, filename="a.jpg", content_type="image/jpeg",
                              key=f"originals/{upload_id}.jpg", declared_size=None,
                              callback_url="https://example.com/hook", upload_expires_at=uploads.utcnow())
        uploads.mark_failed(database, upload_id, "internal", "x")
    first = uploads.callbacks_owed(database, timedelta(seconds=-1), 2)
    rest = uploads.callbacks_owed(database, timedelta(seconds=-1), 2, after=uploads.page_end(first, 2))
    assert [row["id"] for row in first + rest] == [f"{index:032x}" for index in range(3)]
    assert uploads.page_end(rest, 2) is None


def test_the_oldest_pending_row_and_pending_rows_by_id(database):
    assert uploads.oldest_pending_at(database) is None
    first = new_row(database, "a" * 32)
    new_row(database, "b" * 32)
    new_row(database, "c" * 32)
    uploads.mark_failed(database, "c" * 32, "internal", "x")
    assert uploads.timestamp(uploads.oldest_pending_at(database)) == first["created_at"]
    many = [f"{index:032x}" for index in range(1200)] + ["b" * 32, "c" * 32, "e" * 32]
    assert [row["id"] for row in uploads.pending_with_ids(database, many)] == ["b" * 32]
    uploads.mark_failed(database, "a" * 32, "internal", "x")
    assert uploads.timestamp(uploads.oldest_pending_at(database)) > first["created_at"]


def test_pending_rows_whose_url_expired_soonest_first(database):
    now = uploads.utcnow()
    for upload_id, minutes in (("a" * 32, -5), ("b" * 32, -10), ("c" * 32, 5)):
        uploads.insert_upload(database, upload_id=upload_id, filename="a.jpg", content_type="image/jpeg",
                              key=f"originals/{upload_id}.jpg", declared_size=None, callback_url=None,
                              upload_expires_at=now + timedelta(minutes=minutes))
    assert [row["id"] for row in uploads.pending_expired_before(database, now)] == ["b" * 32, "a" * 32]
    assert [row["id"] for row in uploads.pending_expired_before(database, now, limit=1)] == ["b" * 32]
    uploads.mark_failed(database, "b" * 32, "upload_expired", "x")
    assert [row["id"] for row in uploads.pending_expired_before(database, now)] == ["a" * 32]


def test_expired_rows_are_taken_in_turn(database):
    now = uploads.utcnow()
    ids = [f"{index:032x}" for index in range(5)]
    for upload_id in ids:
        uploads.insert_upload(database, upload_id=upload_id, filename="a.jpg", content_type="image/jpeg",
                              key=f"originals/{upload_id}.jpg", declared_size=None, callback_url=None,
                              upload_expires_at=now - timedelta(minutes=1))
    first = uploads.pending_expired_before(database, now, 3)
    after = uploads.page_end(first, 3, "upload_expires_at")
    rest = uploads.pending_expired_before(database, now, 3, after=after)
    assert [row["id"] for row in first + rest] == ids
    assert uploads.page_end(rest, 3, "upload_expires_at") is None


def test_final_uploads_come_a_page_at_a_time_oldest_first_between_dates(database):
    ids = [f"{index:032x}" for index in range(7)]
    for index, upload_id in enumerate(ids):
        new_row(database, upload_id)
        database.execute("UPDATE uploads SET status = ?, created_at = ? WHERE id = ?",
                         ["failed" if index == 3 else "completed", f"2026-01-0{1 + index // 2}T00:00:00.000000Z",
                          upload_id])
    seen, after = [], None
    while page := uploads.final_uploads(database, ("completed",), after=after, limit=2):
        seen += [row["id"] for row in page]
        after = page[-1]["created_at"], page[-1]["id"]
    assert seen == [upload_id for index, upload_id in enumerate(ids) if index != 3]
    between = uploads.final_uploads(database, ("completed", "failed"), created_from="2026-01-02T00:00:00.000000Z",
                                    created_before="2026-01-04T00:00:00.000000Z")
    assert [row["id"] for row in between] == ids[2:6]


def test_a_reprocess_records_objects_and_a_failed_upload_may_complete(database):
    done, failed = new_row(database, "c" * 32), new_row(database, "d" * 32)
    uploads.claim_for_processing(database, done["id"])
    uploads.mark_completed(database, done["id"], size=1, width=1, height=1, image_format="PNG",
                           derivatives={"thumbnail": {"jpeg": "0123"}}, blurhash="00TSUA", dominant_color="#000000")
    assert uploads.record_reprocessed(database, done["id"], {"square": {"webp": "4567"}}, derivative_bytes=321)
    row = uploads.get_upload(database, done["id"])
    assert (uploads.stored_derivatives(row), row["blurhash"], row["derivative_bytes"]) == (
        {"square": {"webp": "4567"}}, "00TSUA", 321)
    uploads.mark_failed(database, failed["id"], "too_many_pixels", "too big")
    assert not uploads.record_reprocessed(database, failed["id"], {}, derivative_bytes=0)
    assert uploads.replace_failure(database, failed["id"], "corrupt_image", "broken")
    assert uploads.mark_completed(database, failed["id"], size=1, width=1, height=1, image_format="PNG",
                                  from_status="failed")
    assert uploads.get_upload(database, failed["id"])["status"] == "completed"
def test_any_status_can_end_deleted_and_a_deleted_row_stays_deleted(database):
    for index, path in enumerate([[], ["claim"], ["claim", "complete"], ["fail"]]):
        upload_id = f"{index}" * 32
        new_row(database, upload_id)
        if "claim" in path:
            uploads.claim_for_processing(database, upload_id)
        if "complete" in path:
            uploads.mark_completed(database, upload_id, size=10, width=2, height=3, image_format="JPEG")
        if "fail" in path:
            uploads.mark_failed(database, upload_id, "not_an_image", "text")
        before = uploads.get_upload(database, upload_id)
        assert uploads.mark_deleted(database, upload_id)["status"] == before["status"]
        deleted = uploads.get_upload(database, upload_id)
        assert deleted["status"] == "deleted" and deleted["deleted_at"] == deleted["updated_at"]
        assert (deleted["width"], deleted["error_code"]) == (before["width"], before["error_code"])
        assert uploads.claim_for_processing(database, upload_id) is None
        assert not uploads.mark_completed(database, upload_id, size=1, width=1, height=1, image_format="PNG")
        assert not uploads.mark_failed(database, upload_id, "internal", "late")
        assert uploads.mark_deleted(database, upload_id) == deleted
    assert uploads.mark_deleted(database, "f" * 32) is None


def test_deleting_asks_for_the_webhook_again_and_counts_its_tries_afresh(database):
    row = uploads.insert_upload(database, upload_id="c" * 32, filename="a.jpg", content_type="image/jpeg",
                                key=f"originals/{'c' * 32}.jpg", declared_size=1,
                                callback_url="https://hooks.example.com/in", upload_expires_at=uploads.utcnow())
    new_row(database)
    for upload_id in (row["id"], "a" * 32):
        uploads.mark_failed(database, upload_id, "upload_expired", "never uploaded")
    uploads.record_delivery_attempt(database, row["id"], http_status=500, error="http_status")
    assert uploads.finish_callback(database, row["id"], uploads.FAILED)
    owed = timedelta(seconds=60)  # final rows are owed their webhook after it; deleted ones at once
    assert uploads.callbacks_owed(database, owed) == []
    for upload_id in (row["id"], "a" * 32):
        uploads.mark_deleted(database, upload_id)
    deleted = uploads.get_upload(database, row["id"])
    assert deleted["callback_state"] == "pending"
    assert uploads.get_upload(database, "a" * 32)["callback_state"] is None
    assert [r["id"] for r in uploads.callbacks_owed(database, owed)] == [row["id"]]
    assert uploads.record_delivery_attempt(database, row["id"], http_status=204, error=None,
                                           since=deleted["deleted_at"]) == 1
    assert len(uploads.delivery_attempts(database, row["id"])) == 2


def test_purging_is_noted_once_the_objects_are_gone(database):
    new_row(database)
    uploads.mark_deleted(database, "a" * 32)
    assert uploads.unpurged_deleted_before(database, uploads.utcnow() - timedelta(seconds=60)) == []
    later = uploads.utcnow() + timedelta(seconds=1)
    assert [r["id"] for r in uploads.unpurged_deleted_before(database, later)] == ["a" * 32]
    uploads.mark_purged(database, "a" * 32)
    assert uploads.unpurged_deleted_before(database, later) == []


def insert_created_at(database, upload_id: str, created_at: str, status: str = "pending"):
    new_row(database, upload_id)
    database.execute("UPDATE uploads SET created_at = ?, status = ? WHERE id = ?", [created_at, status, upload_id])


def test_listing_pages_newest_first_by_time_then_id_and_leaves_out_deleted_rows(database):
    same = "2026-01-01T00:00:01.000000Z"
    insert_created_at(database, "1" * 32, "2026-01-01T00:00:00.000000Z")
    insert_created_at(database, "2" * 32, same, "completed")
    insert_created_at(database, "3" * 32, same, "failed")
    insert_created_at(database, "4" * 32, same, "deleted")
    insert_created_at(database, "5" * 32, "2026-01-01T00:00:02.000000Z")
    pages, after = [], None
    while True:
        page = uploads.list_uploads(database, status=None, limit=2, after=after)
        if not page:
            break
        pages.append([row["id"][0] for row in page])
        after = (page[-1]["created_at"], page[-1]["id"])
    assert pages == [["5", "3"], ["2", "1"]]
    assert [row["id"][0] for row in uploads.list_uploads(database, status="deleted", limit=10)] == ["4"]
    database.execute("UPDATE uploads SET moderation_flagged = 1 WHERE id IN (?, ?)", ["2" * 32, "4" * 32])
    assert [row["id"][0] for row in uploads.list_uploads(database, status=None, flagged=True, limit=10)] == ["2"]
    third = ("2026-01-01T00:00:01.000000Z", "3" * 32)
    assert [row["id"][0] for row in uploads.list_uploads(database, status="completed", limit=10, after=third)] == ["2"]


def test_retention_finds_rows_created_before_the_cutoff_that_are_not_deleted(database):
    insert_created_at(database, "1" * 32, "2026-01-01T00:00:00.000000Z", "completed")
    insert_created_at(database, "2" * 32, "2026-01-01T00:00:00.000000Z", "deleted")
    insert_created_at(database, "3" * 32, "2026-03-01T00:00:00.000000Z", "completed")
    cutoff = uploads.parse_timestamp("2026-02-01T00:00:00.000000Z")
    assert [row["id"] for row in uploads.created_before(database, cutoff)] == ["1" * 32]


def test_rows_by_id_and_stored_bytes(database):
    for upload_id in ("a" * 32, "b" * 32, "c" * 32):
        new_row(database, upload_id)
        uploads.claim_for_processing(database, upload_id)
    for upload_id, original, derived in (("a" * 32, 100, 30), ("b" * 32, 1000, 300)):
        uploads.mark_completed(database, upload_id, size=original, width=1, height=1, image_format="PNG",
                               derivative_bytes=derived)
    uploads.mark_failed(database, "c" * 32, "not_an_image", "text", size=5)
    assert uploads.stored_bytes(database) == (1100, 330)
    uploads.mark_deleted(database, "b" * 32)
    assert uploads.stored_bytes(database) == (100, 30)
    ids = ["a" * 32, "d" * 32, "c" * 32]
    assert {upload_id: row["status"] for upload_id, row in uploads.rows_by_id(database, ids).items()} == {
        "a" * 32: "completed", "c" * 32: "failed"}


def test_a_delivery_of_the_record_from_before_a_delete_leaves_the_deletion_to_announce(database):
    row = uploads.insert_upload(database, upload_id="c" * 32, filename="a.jpg", content_type="image/jpeg",
                                key=f"originals/{'c' * 32}.jpg", declared_size=1,
                                callback_url="https://hooks.example.com/in", upload_expires_at=uploads.utcnow())
    uploads.mark_failed(database, row["id"], "upload_expired", "never uploaded")
    uploads.mark_deleted(database, row["id"])
    assert not uploads.finish_callback(database, row["id"], uploads.DELIVERED)
    assert uploads.get_upload(database, row["id"])["callback_state"] == "pending"
    deleted_at = uploads.get_upload(database, row["id"])["deleted_at"]
    assert uploads.finish_callback(database, row["id"], uploads.DELIVERED, deleted_at=deleted_at)


def test_the_api_answers_503_while_postgresql_is_gone_and_serves_again_after(databases, tmp_path):
    """A dropped connection or a server that does not answer is an outage, not a bug in the
    request: 503 with a JSON error, and the next request after it is served."""
    url = databases.url("postgresql")
    database, admin = uploads.connect(url), uploads.connect(url)
    uploads.ensure_schema(database)
    new_row(database)
    settings = stack_settings(tmp_path, database_url=url)
    client = create_app(settings).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    assert client.get("/uploads/" + "a" * 32 + "/status").status_code == 200

    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    answer = client.get("/uploads/" + "a" * 32 + "/status")
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "database_unavailable"

    answer = client.get("/uploads/" + "a" * 32 + "/status")
    assert answer.status_code == 200 and answer.get_json()["status"] == "pending"
    admin.close()
    database.close()


def test_open_multipart_uploads_are_to_abort_once_not_pending_or_out_of_time_until_closed(database):
    now = uploads.utcnow()
    in_time = new_row(database, "1" * 32, multipart_upload_id="u1", multipart_part_size=8 << 20)
    out_of_time = new_row(database, "2" * 32, multipart_upload_id="u2", multipart_part_size=8 << 20,
                          upload_expires_at=now - timedelta(seconds=5))
    failed = new_row(database, "3" * 32, multipart_upload_id="u3", multipart_part_size=8 << 20)
    uploads.mark_failed(database, failed["id"], "upload_aborted", "aborted")
    new_row(database, "4" * 32, upload_expires_at=now - timedelta(seconds=5))  # one PUT: nothing to abort
    to_abort = uploads.open_multipart_to_abort(database, now, 10)
    assert [row["id"] for row in to_abort] == [out_of_time["id"], failed["id"]]
    assert uploads.open_multipart_to_abort(database, now - timedelta(seconds=10), 10)[0]["id"] == failed["id"]
    uploads.close_multipart(database, out_of_time["id"])
    uploads.close_multipart(database, failed["id"])
    assert uploads.open_multipart_to_abort(database, now, 10) == []
    assert uploads.get_upload(database, in_time["id"])["multipart_closed_at"] is None


def test_superseded_objects_are_noted_taken_in_order_and_forgotten(database):
    new_row(database, "a" * 32)
    uploads.supersede(database, "a" * 32, ["thumbnails/old-1.jpg", "thumbnails/old-2.jpg"])
    uploads.supersede(database, "b" * 32, ["resized/other.jpg"])
    later = uploads.utcnow() + timedelta(seconds=1)
    assert sorted(uploads.superseded_keys(database, "a" * 32)) == ["thumbnails/old-1.jpg", "thumbnails/old-2.jpg"]
    assert uploads.superseded_before(database, uploads.utcnow() - timedelta(hours=1), 10) == []
    assert len(uploads.superseded_before(database, later, 10)) == 3
    assert len(uploads.superseded_before(database, later, 2)) == 2
    uploads.supersede(database, "a" * 32, ["thumbnails/old-1.jpg"])  # superseded again: counted from now, once
    assert len(uploads.superseded_keys(database, "a" * 32)) == 2
    uploads.forget_superseded(database, ["thumbnails/old-1.jpg", "resized/other.jpg"])
    assert [row["key"] for row in uploads.superseded_before(database, later, 10)] == ["thumbnails/old-2.jpg"]
