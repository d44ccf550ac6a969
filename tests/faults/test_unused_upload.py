"""An upload URL that is never used: the row ends failed/upload_expired, and the URL dies."""

from __future__ import annotations

from datetime import timedelta

from bench.minio_requests import request_counts
from bench.sweeper import events_lost
from imgpipe import uploads
from imgpipe.keys import new_upload_id, original_key
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api, curl_put, make_jpegs


def test_an_unused_upload_url_expires(stack_with, tmp_path):
    stack = stack_with(upload_url_ttl=2, upload_grace=1, sweep_min_age=0.5)
    api = Api.of(stack)
    [late] = make_jpegs(tmp_path / "in", 1)
    created = api.create_for(late)

    final = api.wait_final(created["id"], timeout=20)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "upload_expired"
    assert curl_put(created["upload"], late).stdout == "403"
    # Nothing can bring it back: the refused PUT stored no object, so no event will come.
    assert Storage(stack.settings, ROOT).size_of(created["key"]) is None
    assert api.get(f"/uploads/{created['id']}/status").json()["status"] == "failed"


def insert_expired(database, upload_id: str) -> str:
    key = original_key(upload_id, "jpg")
    uploads.insert_upload(database, upload_id=upload_id, filename="a.jpg", content_type="image/jpeg", key=key,
                          declared_size=None, callback_url=None,
                          upload_expires_at=uploads.utcnow() - timedelta(seconds=5))
    return key


def test_expired_urls_fail_without_a_request_each_and_uploaded_ones_are_driven(stack_with, tmp_path):
    """Ids sort by time, so the sweeper's listing tells which expired rows have no original:
    such a row fails with no request of its own to MinIO, and one whose file is there (its
    event lost) is driven and completes."""
    stack = stack_with(upload_grace=1, sweep_min_age=0.5)
    api = Api.of(stack)
    database = uploads.connect(stack.settings.database)
    [photo] = make_jpegs(tmp_path / "in", 1)

    unused = new_upload_id()
    before = request_counts(stack.settings)
    insert_expired(database, unused)
    assert api.wait_final(unused, timeout=20)["error"]["code"] == "upload_expired"
    assert request_counts(stack.settings)["HeadObject"] == before["HeadObject"]

    uploaded, unused = new_upload_id(), new_upload_id()
    with events_lost(stack) as storage:
        storage.write(insert_expired(database, uploaded), photo.read_bytes(), "image/jpeg")
        insert_expired(database, unused)

    assert api.wait_final(unused, timeout=20)["error"]["code"] == "upload_expired"
    assert api.wait_final(uploaded, timeout=20)["status"] == "completed"
