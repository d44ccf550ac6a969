import time
from datetime import datetime, timezone

from imgpipe.keys import (content_version, derivative_key, derivative_key_prefix, is_upload_id, new_upload_id,
                          original_key, originals_made_from, output_format_of, upload_id_from_key)
from polling import eventually


def test_keys_are_made_from_the_id_only():
    upload_id = new_upload_id()
    assert is_upload_id(upload_id)
    assert original_key(upload_id, "png") == f"originals/{upload_id}.png"
    assert derivative_key("resized", upload_id) == f"resized/{upload_id}.jpg"
    assert derivative_key("compressed", upload_id) == f"compressed/{upload_id}.jpg"
    assert derivative_key("thumbnail", upload_id) == f"thumbnails/{upload_id}.jpg"
    assert derivative_key("thumbnail", upload_id, "jpeg") == f"thumbnails/{upload_id}.jpg"
    assert derivative_key("resized", upload_id, "webp") == f"resized/{upload_id}.webp"
    assert derivative_key("compressed", upload_id, "avif") == f"compressed/{upload_id}.avif"
    assert derivative_key("thumbnail", upload_id, "png") == f"thumbnails/{upload_id}.png"


def test_ids_are_unique_and_unguessable():
    ids = {new_upload_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 for i in ids)


def test_upload_id_from_key_accepts_only_keys_imgpipe_made():
    upload_id = new_upload_id()
    assert upload_id_from_key(original_key(upload_id, "jpg")) == upload_id
    for foreign in ["originals/holiday.jpg", f"resized/{upload_id}.jpg", f"originals/{upload_id}",
                    f"originals/../{upload_id}.jpg", f"originals/{upload_id}.jpg/x", "", "originals/"]:
        assert upload_id_from_key(foreign) is None, foreign


def test_is_upload_id_rejects_paths_and_other_shapes():
    assert not is_upload_id("../etc/passwd")
    assert not is_upload_id("0" * 31)
    assert not is_upload_id("G" * 32)


def a_millisecond_later() -> None:
    """Until the clock upload ids are made from has reached its next millisecond."""
    now = time.time_ns() // 1_000_000
    eventually(lambda: time.time_ns() // 1_000_000 > now, 1, "the clock's next millisecond", interval=0.0002)


def test_ids_sort_by_when_they_were_made():
    earlier = new_upload_id()
    a_millisecond_later()
    later = new_upload_id()
    assert original_key(earlier, "jpg") < original_key(later, "png")


def test_listing_after_a_moment_yields_the_originals_made_from_then_on():
    before = new_upload_id()
    a_millisecond_later()
    moment = datetime.now(timezone.utc)
    a_millisecond_later()
    after = new_upload_id()
    assert original_key(before, "jpg") < originals_made_from(moment) < original_key(after, "jpg")
    assert originals_made_from(moment).startswith("originals/")


def test_a_derivative_key_carries_the_version_of_its_bytes():
    upload_id = new_upload_id()
    version = content_version(b"some encoded picture")
    assert len(version) == 16 and int(version, 16) >= 0
    assert content_version(b"some encoded picture") == version, "the same bytes, the same key"
    assert content_version(b"some encoded picture!") != version
    key = derivative_key("thumbnail", upload_id, "webp", version)
    assert key == f"thumbnails/{upload_id}.{version}.webp"
    assert derivative_key("square", upload_id, "avif", version) == f"square/{upload_id}.{version}.avif"
    assert output_format_of(key) == "webp"
    assert upload_id_from_key(key) is None, "a derivative is never taken for an original"
    assert key.startswith(derivative_key_prefix("thumbnail", upload_id))
    assert derivative_key("thumbnail", upload_id).startswith(derivative_key_prefix("thumbnail", upload_id))
