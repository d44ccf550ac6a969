"""Uploads in parts against the real MinIO: the API signs and checks, the store carries the bytes
and refuses what a part URL did not sign, and the completed object goes through the same pipeline
as a single PUT."""

from __future__ import annotations

import io
import json
import os
import time
from urllib.parse import quote_plus

import pytest
import requests
from PIL import Image

from imgpipe import uploads
from imgpipe.multipart import DEFAULT_PART_SIZE, MIB
from imgpipe.queues import relayed_count_key
from imgpipe.redis_connection import redis_client
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT, UPLOAD
from imgpipe.upload_tokens import mint
from pipeline_client import Api
from polling import eventually
from stacks import running_stack

SECRET = "multipart-test-upload-token-secret-0123456789"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("multipart"), upload_token_secret=SECRET) as running:
        yield running


@pytest.fixture
def api(stack):
    return Api.of(stack)


@pytest.fixture(scope="module")
def store(stack) -> Storage:
    """The bucket as its owner sees it, to count what the store itself holds."""
    return Storage(stack.settings, ROOT)


def big_jpeg(size_at_least: int) -> bytes:
    """A JPEG of noise, which hardly compresses: a few megapixels make several MiB."""
    side = int((size_at_least / 1.15) ** 0.5) + 16
    pixels = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    pixels.save(out, "JPEG", quality=95)
    assert len(out.getvalue()) >= size_at_least, len(out.getvalue())
    return out.getvalue()


def create(api: Api, data: bytes, **extra) -> dict:
    answer = api.post("/uploads", json={"filename": "big.jpg", "content_type": "image/jpeg", "size": len(data),
                                        **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def sign(api: Api, upload_id: str, number: int) -> dict:
    answer = api.get(f"/uploads/{upload_id}/multipart/parts/{number}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def put_part(part: dict, body: bytes) -> requests.Response:
    return requests.put(part["url"], data=body, headers=part["headers"], timeout=30)


def send_parts(api: Api, created: dict, data: bytes, numbers=None) -> list[dict]:
    plan = created["multipart"]
    sent = []
    for number in numbers or range(1, plan["part_count"] + 1):
        part = sign(api, created["id"], number)
        start = (number - 1) * plan["part_size"]
        answer = put_part(part, data[start:start + part["size"]])
        assert answer.status_code == 200, answer.text
        sent.append({"part_number": number, "etag": answer.headers["ETag"]})
    return sent


def complete(api: Api, upload_id: str, parts: list[dict]) -> requests.Response:
    return api.post(f"/uploads/{upload_id}/multipart/complete", json={"parts": parts})


def test_a_file_over_the_threshold_goes_in_parts_and_is_processed_as_one_put_is(api, stack, store):
    data = big_jpeg(stack.settings.multipart_threshold_mb * MIB + 1)
    created = create(api, data)
    assert "upload" not in created
    plan = created["multipart"]
    assert plan["key"] == created["key"] and plan["part_size"] == DEFAULT_PART_SIZE
    assert plan["part_count"] == -(-len(data) // DEFAULT_PART_SIZE) >= 3

    parts = send_parts(api, created, data)
    listed = api.get(f"/uploads/{created['id']}/multipart/parts").json()["parts"]
    assert [(p["part_number"], p["etag"]) for p in listed] == [(p["part_number"], p["etag"].strip('"')) for p in parts]
    assert sum(p["size"] for p in listed) == len(data)

    answer = complete(api, created["id"], parts)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == created["id"]
    assert api.wait_final(created["id"], timeout=60)["status"] == "completed"
    stored = store.stat(created["key"])
    assert stored.size == len(data) and stored.etag.endswith(f"-{plan['part_count']}")
    assert store.client.get_object(store.bucket, created["key"]).read() == data
    results = api.get(f"/uploads/{created['id']}/results").json()
    for version in ("resized", "compressed", "thumbnail"):
        fetched = requests.get(results[version], timeout=10)
        assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).format == "JPEG"
    # Asking again, as a client that lost the first answer does, changes nothing.
    again = complete(api, created["id"], parts)
    assert again.status_code == 200 and again.json()["status"] == "completed"
    # MinIO's own event for a completed multipart upload started the work, not the sweeper.
    assert f"upload {created['id']}: enqueued (event)" in stack.path("log", "relay.log").read_text()
    assert_a_duplicate_event_does_nothing(stack, created, len(data))


def assert_a_duplicate_event_does_nothing(stack, created: dict, size: int) -> None:
    """The same CompleteMultipartUpload event once more, shaped as MinIO's Redis target writes it."""
    connection = redis_client(stack.settings, "cli")
    database = uploads.connect(stack.settings.database)
    before = uploads.get_upload(database, created["id"])
    relayed = int(connection.get(relayed_count_key(stack.settings)) or 0)
    record = {"eventName": "s3:ObjectCreated:CompleteMultipartUpload",
              "s3": {"bucket": {"name": stack.settings.s3_bucket_name},
                     "object": {"key": quote_plus(created["key"]), "size": size}}}
    connection.rpush(stack.settings.events_key, json.dumps([{"Event": [record], "EventTime": "now"}]))
    eventually(lambda: int(connection.get(relayed_count_key(stack.settings)) or 0) > relayed, what="the event relayed")
    after = uploads.get_upload(database, created["id"])
    assert (after["status"], after["attempts"], after["updated_at"]) == (
        before["status"], before["attempts"], before["updated_at"])
    assert f"ignored event for upload {created['id']}: already completed" in stack.path("log", "relay.log").read_text()
    connection.close()
    database.close()


def test_a_small_file_goes_in_parts_when_asked_and_in_one_put_otherwise(api):
    assert "upload" in api.create(size=2000) and "multipart" not in api.create(size=2000)
    asked = api.create(size=2000, multipart=True)["multipart"]
    assert (asked["part_count"], asked["part_size"]) == (1, DEFAULT_PART_SIZE)
    assert "upload" in api.create(size=64 * MIB // 2, multipart=False)
    refused = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10,
                                         "multipart": "yes"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"


def test_the_store_refuses_a_part_of_another_length_than_its_url_signed(api, stack):
    data = big_jpeg(9 * MIB)
    created = create(api, data, multipart=True)
    part = sign(api, created["id"], 1)
    assert part["size"] == DEFAULT_PART_SIZE
    for body in (data[:part["size"] - 1], data[:part["size"] + 1]):
        # requests sends the body's own length: the signed one does not match it
        answer = requests.put(part["url"], data=body, timeout=30)
        assert answer.status_code == 403, answer.text
        assert "SignatureDoesNotMatch" in answer.text or "AccessDenied" in answer.text
    # The header lying about the length does not help: the store reads what the header says.
    lying = requests.put(part["url"], data=data[:part["size"] - 1], headers=part["headers"], timeout=30)
    assert lying.status_code >= 400
    assert api.get(f"/uploads/{created['id']}/multipart/parts").json()["parts"] == []
    # Another part number or upload id under the same signature is refused too.
    other = requests.put(part["url"].replace("partNumber=1", "partNumber=2"), data=data[:part["size"]],
                         headers=part["headers"], timeout=30)
    assert other.status_code == 403
    elsewhere = create(api, data, multipart=True)["multipart"]["upload_id"]
    other = requests.put(part["url"].replace(created["multipart"]["upload_id"], elsewhere), data=data[:part["size"]],
                         headers=part["headers"], timeout=30)
    assert other.status_code == 403


def test_a_part_url_does_nothing_but_upload_that_part(api, stack, store):
    data = big_jpeg(9 * MIB)
    created = create(api, data, multipart=True)
    part = sign(api, created["id"], 2)
    upload_id = created["multipart"]["upload_id"]
    # Turned into a complete or an abort: another method, so another signature.
    assert requests.post(part["url"], data=b"<CompleteMultipartUpload/>", timeout=10).status_code == 403
    assert requests.delete(part["url"], timeout=10).status_code == 403
    # The upload identity that signs part URLs may neither list nor abort. (Completing is
    # s3:PutObject, which it must have to upload a part: only its URLs ever leave the API, and
    # they sign the method and the part, never a complete.)
    uploader = Storage(stack.settings, UPLOAD)
    for attempt in (lambda: uploader.parts(created["key"], upload_id),
                    lambda: uploader.abort_multipart(created["key"], upload_id)):
        with pytest.raises(Exception, match="AccessDenied"):
            attempt()
    # A copy from another object into the part needs read access, which the upload identity lacks.
    store.client.put_object(store.bucket, "originals/elsewhere.jpg", io.BytesIO(data), len(data),
                            content_type="image/jpeg")
    copied = requests.put(part["url"], headers={**part["headers"], "x-amz-copy-source": f"/{store.bucket}/originals/elsewhere.jpg"},
                          data=b"", timeout=10)
    assert copied.status_code == 403
    assert store.parts(created["key"], upload_id) == []
    store.remove(["originals/elsewhere.jpg"])


UNSIGNED = {"Content-Encoding": "gzip", "x-amz-tagging": "owner=someone-else", "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "Cache-Control": "public, max-age=31536000", "Content-Type": "text/html"}


def test_headers_a_part_url_did_not_sign_do_not_reach_the_object(api, store):
    """The object's metadata is the create's, which the API made: what a client adds to its part
    PUTs is ignored or refused, and the upload completes as declared."""
    data = big_jpeg(9 * MIB)
    created = create(api, data, multipart=True)
    plan = created["multipart"]
    parts = []
    for number in (1, 2):
        part = sign(api, created["id"], number)
        start = (number - 1) * plan["part_size"]
        answer = requests.put(part["url"], data=data[start:start + part["size"]],
                              headers={**part["headers"], **UNSIGNED}, timeout=30)
        assert answer.status_code == 200, answer.text
        parts.append({"part_number": number, "etag": answer.headers["ETag"]})
    assert complete(api, created["id"], parts).status_code == 200
    assert api.wait_final(created["id"], timeout=60)["status"] == "completed"
    stored = store.stat(created["key"])
    assert stored.headers["content-type"] == "image/jpeg"
    assert not {"content-encoding", "x-amz-tagging-count", "cache-control"} & set(stored.headers), stored.headers
    assert stored.headers.get("x-amz-storage-class", "STANDARD") == "STANDARD"


def test_a_complete_with_a_part_missing_or_misnamed_is_refused_with_a_code(api, stack, store):
    data = big_jpeg(17 * MIB)
    created = create(api, data)
    count = created["multipart"]["part_count"]
    parts = send_parts(api, created, data, numbers=range(1, count))
    answer = complete(api, created["id"], parts)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "multipart_parts_missing"
    assert str(count) in answer.json()["error"]["message"]
    parts += send_parts(api, created, data, numbers=[count])
    wrong_etag = [*parts[:-1], {"part_number": count, "etag": '"' + "0" * 32 + '"'}]
    answer = complete(api, created["id"], wrong_etag)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "multipart_etag_mismatch"
    answer = complete(api, created["id"], parts[:-1])
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "multipart_parts_invalid"
    for body in ({}, {"parts": "all"}, {"parts": [{"part_number": "1", "etag": "x"}]}, [1]):
        answer = api.post(f"/uploads/{created['id']}/multipart/complete", json=body)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request", body
    assert api.get(f"/uploads/{created['id']}/status").json()["status"] == "pending"
    assert complete(api, created["id"], parts).status_code == 200
    assert api.wait_final(created["id"], timeout=60)["status"] == "completed"


def test_part_numbers_out_of_the_plan_and_calls_on_a_single_put_upload_are_refused(api):
    created = api.create(size=6 * MIB, multipart=True)
    assert created["multipart"]["part_count"] == 1
    for number in (0, 2, 10001):
        answer = api.get(f"/uploads/{created['id']}/multipart/parts/{number}")
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_part_number"
    assert api.get(f"/uploads/{created['id']}/multipart/parts/x").status_code == 404
    single = api.create(size=1000)
    for path in ("/multipart/parts", "/multipart/parts/1"):
        answer = api.get(f"/uploads/{single['id']}{path}")
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_multipart"
    assert api.get("/uploads/" + "0" * 32 + "/multipart/parts").status_code == 404


def test_an_aborted_upload_leaves_no_parts_and_ends_failed(api, stack, store):
    data = big_jpeg(9 * MIB)
    created = create(api, data, multipart=True)
    send_parts(api, created, data, numbers=[1])
    upload_id = created["multipart"]["upload_id"]
    assert len(store.parts(created["key"], upload_id)) == 1
    answer = api.http.delete(f"{api.base}/uploads/{created['id']}/multipart", timeout=10)
    assert answer.status_code == 200 and answer.json()["error"]["code"] == "upload_aborted"
    assert answer.json()["status"] == "failed"
    assert store.parts(created["key"], upload_id) is None
    assert store.client._list_multipart_uploads(store.bucket, prefix=created["key"]).uploads == []
    refused = api.get(f"/uploads/{created['id']}/multipart/parts/1")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "upload_not_pending"


def test_an_upload_token_and_its_byte_cap_count_a_multipart_upload_as_one_file(stack, store):
    token = mint(SECRET, f"visitor-{time.monotonic_ns()}", int(time.time()) + 600, max_bytes=20 * MIB)
    visitor = Api(stack.api_url, token)
    data = big_jpeg(12 * MIB)
    created = create(visitor, data, multipart=True)
    assert created["multipart"]["part_count"] == 2
    parts = send_parts(visitor, created, data)
    assert complete(visitor, created["id"], parts).status_code == 200
    assert visitor.wait_final(created["id"], timeout=60)["status"] == "completed"
    # 12 MiB of 20 used: another 12 MiB is over the cap, in parts or not.
    for multipart in (True, False):
        over = visitor.post("/uploads", json={"filename": "b.jpg", "content_type": "image/jpeg", "size": len(data),
                                              "multipart": multipart})
        assert over.status_code == 403 and over.json()["error"]["code"] == "token_exhausted"
    # Nor can the bytes it may still send be stretched: a part holds what its URL signs, and no
    # part may be added past the plan, so the object is the declared size or nothing.
    small = create(visitor, data[:6 * MIB], multipart=True)
    part = sign(visitor, small["id"], 1)
    assert put_part(part, data[:6 * MIB + 1]).status_code >= 400
    assert visitor.get(f"/uploads/{small['id']}/multipart/parts/2").status_code == 400
    # Another token reads and sends nothing of this token's uploads.
    other = Api(stack.api_url, mint(SECRET, "someone-else", int(time.time()) + 600))
    for path in ("/multipart/parts", "/multipart/parts/1"):
        assert other.get(f"/uploads/{small['id']}{path}").status_code == 403
    assert other.post(f"/uploads/{small['id']}/multipart/complete", json={"parts": []}).status_code == 403
