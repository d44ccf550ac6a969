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
    first = uploads.callbacks_waiting_older_than(database, timedelta(seconds=-1), 2)
    rest = uploads.callbacks_waiting_older_than(database, timedelta(seconds=-1), 2, after=uploads.page_end(first, 2))
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
