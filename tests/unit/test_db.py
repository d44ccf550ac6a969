from datetime import timedelta

import pytest

from imgpipe import db as uploads


@pytest.fixture
def database(tmp_path):
    database = uploads.connect(str(tmp_path / "imgpipe.db"))
    uploads.ensure_schema(database)
    return database


def new_row(database, upload_id="a" * 32):
    return uploads.insert_upload(database, upload_id=upload_id, filename="a.jpg", content_type="image/jpeg",
                                 key=f"originals/{upload_id}.jpg", declared_size=None, callback_url=None,
                                 upload_expires_at=uploads.utcnow() + timedelta(minutes=15))


def test_a_new_row_is_pending(database):
    row = new_row(database)
    assert row["status"] == "pending"
    assert uploads.get_upload(database, row["id"])["status"] == "pending"


def test_status_only_moves_forward(database):
    row = new_row(database)
    claimed = uploads.claim_for_processing(database, row["id"])
    assert (claimed["status"], claimed["attempts"]) == ("processing", 1)
    assert uploads.claim_for_processing(database, row["id"])["attempts"] == 2
    assert uploads.mark_completed(database, row["id"], size=10, width=2, height=3, image_format="JPEG")
    assert uploads.claim_for_processing(database, row["id"]) is None
    assert not uploads.mark_failed(database, row["id"], "internal", "late failure")
    assert not uploads.mark_completed(database, row["id"], size=1, width=1, height=1, image_format="PNG")
    final = uploads.get_upload(database, row["id"])
    assert (final["status"], final["width"], final["error_code"]) == ("completed", 2, None)


def test_completed_needs_processing_first(database):
    row = new_row(database)
    assert not uploads.mark_completed(database, row["id"], size=1, width=1, height=1, image_format="PNG")


def test_a_failed_row_keeps_its_code(database):
    row = new_row(database)
    assert uploads.mark_failed(database, row["id"], "upload_expired", "never uploaded")
    assert uploads.claim_for_processing(database, row["id"]) is None
    final = uploads.get_upload(database, row["id"])
    assert (final["status"], final["error_code"]) == ("failed", "upload_expired")


def test_age_queries_find_old_rows_only(database):
    new_row(database, "a" * 32)
    assert uploads.pending_older_than(database, timedelta(seconds=60)) == []
    assert [r["id"] for r in uploads.pending_older_than(database, timedelta(seconds=-1))] == ["a" * 32]
    uploads.claim_for_processing(database, "a" * 32)
    assert [r["id"] for r in uploads.processing_older_than(database, timedelta(seconds=-1))] == ["a" * 32]


def test_timestamps_round_trip():
    moment = uploads.utcnow()
    assert uploads.parse_timestamp(uploads.timestamp(moment)) == moment
