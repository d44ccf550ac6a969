"""Abandoned multipart uploads leave no parts behind: the running relay's housekeeping aborts them,
counted from the store's own ListMultipartUploads and ListParts."""

from __future__ import annotations

import os

import pytest
import requests

from imgpipe.multipart import MIB
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api
from polling import eventually
from stacks import running_stack

TTL, GRACE = 3, 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("multipart-housekeeping"), multipart_ttl=TTL,
                       upload_grace=GRACE) as running:
        yield running


def open_uploads(store: Storage, key: str) -> list[str]:
    """The ids of the multipart uploads the store holds of `key`, from its ListMultipartUploads
    (which MinIO answers for one object name at a time)."""
    listed = store.client._list_multipart_uploads(store.bucket, prefix=key)
    return [upload.upload_id for upload in listed.uploads if upload.object_name == key]


def send_part(api: Api, upload: dict, number: int) -> None:
    part = api.get(f"/uploads/{upload['id']}/multipart/parts/{number}").json()
    assert requests.put(part["url"], data=os.urandom(part["size"]), headers=part["headers"],
                        timeout=30).status_code == 200


def test_abandoned_uploads_are_aborted_and_leave_no_parts(stack):
    api = Api.of(stack)
    store = Storage(stack.settings, ROOT)
    size = 12 * MIB
    expired = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": size,
                                         "multipart": True}).json()
    send_part(api, expired, 1)
    deleted = api.post("/uploads", json={"filename": "b.jpg", "content_type": "image/jpeg", "size": size,
                                         "multipart": True}).json()
    send_part(api, deleted, 2)
    assert api.delete(deleted["id"]).status_code == 200
    abandoned = [(upload["key"], upload["multipart"]["upload_id"]) for upload in (expired, deleted)]
    for key, upload_id in abandoned:
        assert open_uploads(store, key) == [upload_id]
        assert len(store.parts(key, upload_id)) == 1

    eventually(lambda: not any(open_uploads(store, key) for key, _ in abandoned),
               timeout=TTL + GRACE + 30, what="housekeeping to abort the abandoned uploads")
    for key, upload_id in abandoned:
        assert store.parts(key, upload_id) is None, key  # NoSuchUpload: no part is kept
        assert store.listed_size(key) is None
    assert api.wait_final(expired["id"], timeout=30)["error"]["code"] == "upload_expired"
    refused = api.get(f"/uploads/{expired['id']}/multipart/parts/2")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "upload_not_pending"
