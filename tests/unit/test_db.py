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
    assert uploads.in_status_older_than(database, "pending", timedelta(seconds=60)) == []
    assert [r["id"] for r in uploads.in_status_older_than(database, "pending", timedelta(seconds=-1))] == ["a" * 32]
    uploads.claim_for_processing(database, "a" * 32)
    assert [r["id"] for r in uploads.in_status_older_than(database, "processing", timedelta(seconds=-1))] == ["a" * 32]


def test_timestamps_round_trip():
    moment = uploads.utcnow()
    assert uploads.parse_timestamp(uploads.timestamp(moment)) == moment


def test_formats_are_stored_and_default_to_jpeg(database):
    assert uploads.output_formats(new_row(database)) == ("jpeg",)
    row = uploads.insert_upload(database, upload_id="b" * 32, filename="a.png", content_type="image/png",
                                key=f"originals/{'b' * 32}.png", declared_size=None, callback_url=None,
                                upload_expires_at=uploads.utcnow(), formats=("png", "webp"))
    assert uploads.output_formats(uploads.get_upload(database, row["id"])) == ("png", "webp")


def test_a_callback_is_pending_until_it_is_delivered_or_failed_and_then_stays(database):
    assert new_row(database)["callback_state"] is None
    row = uploads.insert_upload(database, upload_id="c" * 32, filename="a.jpg", content_type="image/jpeg",
                                key=f"originals/{'c' * 32}.jpg", declared_size=None,
                                callback_url="https://hooks.example.com/in", upload_expires_at=uploads.utcnow())
    assert uploads.get_upload(database, row["id"])["callback_state"] == "pending"
    assert uploads.record_delivery_attempt(database, row["id"], http_status=500, error="answered HTTP 500") == 1
    assert uploads.record_delivery_attempt(database, row["id"], http_status=204, error=None) == 2
    assert uploads.finish_callback(database, row["id"], uploads.DELIVERED)
    assert not uploads.finish_callback(database, row["id"], uploads.FAILED)
    assert uploads.get_upload(database, row["id"])["callback_state"] == "delivered"
    attempts = uploads.delivery_attempts(database, row["id"])
    assert [(a["http_status"], a["error"]) for a in attempts] == [(500, "answered HTTP 500"), (204, None)]
    assert attempts[0]["attempted_at"] <= attempts[1]["attempted_at"]


def test_a_database_from_before_webhooks_and_formats_gains_their_columns(tmp_path):
    path = str(tmp_path / "old.db")
    old = uploads.connect(path)
    old["uploads"].create({name: kind for name, kind in uploads.COLUMNS.items()
                           if name not in ("formats", "callback_state")}, pk="id")
    old["uploads"].insert({"id": "d" * 32, "key": "originals/x.jpg", "status": "pending", "callback_url": None})
    uploads.ensure_schema(old)
    uploads.ensure_schema(old)
    row = uploads.get_upload(old, "d" * 32)
    assert (row["formats"], uploads.output_formats(row)) == (None, ("jpeg",))
    assert uploads.record_delivery_attempt(old, "d" * 32, http_status=None, error="refused") == 1


def test_final_rows_with_a_pending_callback_are_found_until_it_is_settled(database):
    hooked = uploads.insert_upload(database, upload_id="b" * 32, filename="b.jpg", content_type="image/jpeg",
                                   key=f"originals/{'b' * 32}.jpg", declared_size=None,
                                   callback_url="https://example.com/hook",
                                   upload_expires_at=uploads.utcnow() + timedelta(minutes=15))
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
    uploads.record_delivery_attempt(database, row["id"], http_status=500, error="answered HTTP 500")
    assert uploads.finish_callback(database, row["id"], uploads.FAILED)
    assert uploads.deleted_with_callback_waiting(database) == []
    for upload_id in (row["id"], "a" * 32):
        uploads.mark_deleted(database, upload_id)
    deleted = uploads.get_upload(database, row["id"])
    assert deleted["callback_state"] == "pending"
    assert uploads.get_upload(database, "a" * 32)["callback_state"] is None
    assert [r["id"] for r in uploads.deleted_with_callback_waiting(database)] == [row["id"]]
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
        uploads.record_derivative_bytes(database, upload_id, derived)
        uploads.mark_completed(database, upload_id, size=original, width=1, height=1, image_format="PNG")
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
