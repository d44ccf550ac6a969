"""The relay's housekeeping on stacks of their own, with short ages: orphan originals removed by
the running relay once old enough (and not before), an original that got past the limit removed
with its row kept, retention deleting old uploads as DELETE does, and one LIST of originals/ per
sweep, counted by MinIO, feeding both steps that read the bucket."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from PIL import Image

from bench.minio_requests import request_counts
from imgpipe.uploads import connect, get_upload, parse_timestamp, timestamp, utcnow
from imgpipe.keys import new_upload_id, original_key
from imgpipe.redis_connection import redis_client
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT, WORKER
from pipeline_client import Api, curl_put, put_file
from polling import eventually
from processor.housekeeping import STEPS
from processor.relay import Relay
from stacks import running_stack
from stored_objects import objects_of

ORPHAN_MIN_AGE = 3.0
MAX_UPLOAD_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def tidy_stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("tidy-stack"), orphan_min_age=ORPHAN_MIN_AGE,
                       max_upload_bytes=MAX_UPLOAD_BYTES) as stack:
        yield stack


def photo(path, size=(400, 300)):
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG", quality=80)
    return path


def present(storage: Storage, upload: dict) -> list[str]:
    return objects_of(storage, upload["id"], upload["key"])


def test_the_relay_removes_orphans_once_they_are_old_enough_and_nothing_in_use(tidy_stack, tmp_path):
    api, storage = Api.of(tidy_stack), Storage(tidy_stack.settings, ROOT)
    kept_path = photo(tmp_path / "kept.jpg")
    kept = api.create_for(kept_path)
    put_file(kept["upload"], kept_path)
    assert api.wait_final(kept["id"])["status"] == "completed"

    no_row = original_key(new_upload_id(), "png")
    storage.write(no_row, b"nobody asked for this", "image/png")
    late_path = photo(tmp_path / "late.jpg")
    late = api.create_for(late_path)
    assert api.delete(late["id"]).json()["status"] == "deleted"
    put_file(late["upload"], late_path)  # the URL is still valid: the store takes it, no upload will use it
    written = time.monotonic()

    assert storage.size_of(no_row) is not None and storage.size_of(late["key"]) is not None
    # Watched until they go: removed before ORPHAN_MIN_AGE, the assertion after the wait says so.
    eventually(lambda: storage.size_of(no_row) is None and storage.size_of(late["key"]) is None,
               ORPHAN_MIN_AGE + 10, "removing the orphans")
    assert time.monotonic() - written >= ORPHAN_MIN_AGE - 0.5
    assert present(storage, late) == [], "no derivative was ever made for the deleted upload"
    assert len(present(storage, kept)) == 4
    assert api.get(f"/uploads/{late['id']}/status").json()["status"] == "deleted"


def test_an_original_over_the_limit_that_got_in_anyway_is_removed_and_its_row_kept(tidy_stack):
    """The store refuses such a PUT; an object written another way (or before the limit was lowered)
    is still refused by the worker, and removed at once."""
    api, storage = Api.of(tidy_stack), Storage(tidy_stack.settings, ROOT)
    created = api.create("big.bmp", "image/bmp", 10)
    storage.write(created["key"], b"B" * (MAX_UPLOAD_BYTES + 1), "image/bmp")
    status = api.wait_final(created["id"])
    assert (status["status"], status["error"]["code"]) == ("failed", "too_large")
    eventually(lambda: storage.size_of(created["key"]) is None, 10, "removing the original")
    record = api.get(f"/uploads/{created['id']}").json()
    assert (record["filename"], record["error"]["code"]) == ("big.bmp", "too_large")


def test_retention_deletes_old_uploads_the_way_delete_does(tmp_path):
    """Time is made to pass by moving one upload's creation two days back."""
    with running_stack(tmp_path / "stack", retention_days=1) as stack:
        api, storage = Api.of(stack), Storage(stack.settings, ROOT)
        path = photo(tmp_path / "old.jpg")
        old, recent = (api.create_for(path, formats=["jpeg", "png"]) for _ in range(2))
        for created in (old, recent):
            assert curl_put(created["upload"], path).stdout == "200"
            assert api.wait_final(created["id"])["status"] == "completed"
        assert len(present(storage, old)) == 7
        database = connect(stack.settings.database)
        two_days_ago = timestamp(utcnow() - timedelta(days=2))
        database.execute("UPDATE uploads SET created_at = ? WHERE id = ?", [two_days_ago, old["id"]])

        [retention] = [step for step in STEPS if step.name == "retention"]
        eventually(lambda: api.get(f"/uploads/{old['id']}/status").json()["status"] == "deleted", retention.every + 15,
                   "retention deleting the old upload")
        # The row is marked deleted first, then its objects are removed, then it is noted purged.
        eventually(lambda: get_upload(database, old["id"])["purged_at"] is not None, 10, "the objects' removal")
        assert present(storage, old) == []
        row = get_upload(database, old["id"])
        assert (row["width"], row["purged_at"] is not None) == (400, True)
        assert api.get(f"/uploads/{recent['id']}/status").json()["status"] == "completed"
        assert len(present(storage, recent)) == 7


def test_one_list_of_originals_per_sweep_feeds_the_missed_events_and_the_orphans(tmp_path):
    """The stack's relay is stopped and a relay of the test's own sweeps: an upload whose event
    nobody takes and an original with no row are both found by the first sweep's one LIST, and
    every later sweep makes one LIST too, as MinIO counts them."""
    with running_stack(tmp_path / "stack", orphan_min_age=0.0) as stack:
        stack.stop_process("relay")
        api, storage = Api.of(stack), Storage(stack.settings, ROOT)
        path = photo(tmp_path / "missed.jpg")
        missed = api.create_for(path)
        put_file(missed["upload"], path)  # its event waits in Redis: no relay takes it
        orphan = original_key(new_upload_id(), "png")
        storage.write(orphan, b"nobody asked for this", "image/png")
        database = connect(stack.settings.database)
        created = parse_timestamp(get_upload(database, missed["id"])["created_at"])
        eventually(lambda: utcnow() - created > timedelta(seconds=stack.settings.sweep_min_age), 10,
                   "the upload to be old enough for the sweep")
        relay = Relay(stack.settings, redis_client(stack.settings, "cli"), database,
                      Storage(stack.settings, WORKER))

        before = request_counts(stack.settings)["ListObjectsV2"]
        first = relay.housekeeping.sweep()
        assert (first["missed events"], first["orphans"]) == (1, 1)
        assert request_counts(stack.settings)["ListObjectsV2"] - before == 1
        assert storage.size_of(orphan) is None
        assert api.wait_final(missed["id"])["status"] == "completed"

        done, sweeps = Counter(), 20
        before = request_counts(stack.settings)["ListObjectsV2"]
        for _ in range(sweeps):
            done.update(relay.housekeeping.sweep())
        assert request_counts(stack.settings)["ListObjectsV2"] - before == sweeps
        assert done == Counter(), "nothing left to do"
