"""An upload URL grants one PUT of one original, and nothing else, against the real MinIO.

Every header a presigned PUT's signature does not list is added, one at a time, to an otherwise
valid PUT. Each ends one of three ways: the store refuses the PUT; the upload fails with a
documented code; or it completes with exactly the uploaded bytes, and nothing of the header
reaches the result URLs. Never a copy, an expansion, `internal`, or a row left in the works.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import json
import secrets
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from minio import Minio
from minio.error import S3Error

import imagegen
from cli.main import cli
from imgpipe.error_codes import UploadFailure
from imgpipe.storage import Storage
from imgpipe.store_identities import API, MULTIPART, READ, ROOT, UPLOAD, WORKER
from notify_config.identities import IdentityProblem, apply_identities, check_given
from pipeline_client import Api
from polling import eventually

SSE_C_KEY = secrets.token_bytes(32)
SSE_C = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
         "x-amz-server-side-encryption-customer-key": base64.b64encode(SSE_C_KEY).decode(),
         "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(hashlib.md5(SSE_C_KEY).digest()).decode()}
REFUSED, FAILED, COMPLETED = "refused by the store", "failed", "completed"

# header(s) added to the PUT, how the body is made from the picture, and how the pinned MinIO and
# imgpipe answer it (any of the three would do; the test holds the one measured).
CASES = {
    "gzip": ({"Content-Encoding": "gzip"}, gzip.compress, (FAILED, "encoded_original")),
    "br": ({"Content-Encoding": "br"}, None, (FAILED, "encoded_original")),
    "sse-c": (SSE_C, None, (REFUSED, None)),
    "user metadata": ({"x-amz-meta-origin": "elsewhere"}, None, (REFUSED, None)),
    "tagging": ({"x-amz-tagging": "owner=someone-else"}, None, (FAILED, "unsigned_metadata")),
    "website redirect": ({"x-amz-website-redirect-location": "/originals/other.jpg"}, None, (COMPLETED, None)),
    "storage class": ({"x-amz-storage-class": "REDUCED_REDUNDANCY"}, None, (FAILED, "unsigned_metadata")),
    "cache-control": ({"Cache-Control": "public, max-age=31536000"}, None, (COMPLETED, None)),
    "content-disposition": ({"Content-Disposition": "inline; filename=page.html"}, None, (COMPLETED, None)),
    "public-read acl": ({"x-amz-acl": "public-read"}, None, (COMPLETED, None)),
}


@pytest.fixture
def api(stack):
    client = Api.of(stack)
    client.http.headers["Authorization"] = f"Bearer {stack.settings.api_token}"
    return client


@pytest.fixture
def root(stack):
    return Storage(stack.settings, ROOT)


def client_as(settings, role: str) -> Minio:
    return Storage(settings, role, retries=0).client


def picture(seed: int) -> bytes:
    return imagegen.encode(imagegen.photo_like(320, 240, seed=seed), "JPEG", quality=85)


def put(created: dict, body: bytes, extra: dict[str, str]) -> requests.Response:
    upload = created["upload"]
    return requests.put(upload["url"], data=body, headers={**upload["headers"], **extra}, timeout=30)


def completed_upload(api, data: bytes) -> dict:
    created = api.create("victim.jpg", "image/jpeg", len(data))
    assert put(created, data, {}).status_code == 200
    assert api.wait_final(created["id"])["status"] == "completed"
    return created


def result_urls(results: dict) -> dict[str, str]:
    urls = {"original": results["original"]}
    for preset, by_format in results["presets"].items():
        urls.update({f"{preset}.{fmt}": url for fmt, url in by_format.items()})
    return urls


def assert_results_say_only_what_imgpipe_stored(api, created: dict, uploaded: bytes) -> None:
    """Every result URL answers with imgpipe's type, disposition, encoding and caching, none of
    what came with the PUT, and the original is exactly the uploaded bytes."""
    results = api.get(f"/uploads/{created['id']}/results").json()
    for name, url in result_urls(results).items():
        response = requests.get(url, timeout=10, stream=True, allow_redirects=False)
        raw = response.raw.read(decode_content=False)
        headers = {key.lower(): value for key, value in response.headers.items()}
        assert response.status_code == 200, (name, response.status_code)
        assert headers.get("content-encoding", "identity") == "identity", name
        assert headers["cache-control"] == "private", name
        assert requests.get(url.split("?")[0], timeout=10).status_code == 403, f"{name} is private still"
        if name == "original":
            assert raw == uploaded
            assert headers["content-type"] == "image/jpeg"
            assert headers["content-disposition"].startswith("attachment;")
        else:
            assert headers["content-type"] == f"image/{name.split('.')[1]}"
            assert headers["content-disposition"] == "inline"
        leaked = [key for key in headers if key.startswith("x-amz-meta-") or key in (
            "x-amz-tagging-count", "x-amz-website-redirect-location", "location")]
        assert leaked == [] and headers.get("x-amz-storage-class", "STANDARD") == "STANDARD", (name, headers)


def assert_ends_as(api, root, created: dict, body: bytes, response: requests.Response, expected) -> None:
    outcome, code = expected
    if outcome == REFUSED:
        assert response.status_code in (400, 403), response.text
        assert root.size_of(created["key"]) is None, "a refused PUT stored nothing"
        # Nor is the row stuck: the URL still takes the PUT it was signed for.
        assert put(created, body, {}).status_code == 200
        outcome, code = COMPLETED, None
    else:
        assert response.status_code == 200, response.text
    status = api.wait_final(created["id"])
    if outcome == FAILED:
        assert (status["status"], status["error"]["code"]) == ("failed", code), status
        assert UploadFailure(code).stored_otherwise
        eventually(lambda: root.size_of(created["key"]) is None, 10, "removing the refused original")
        return
    assert (status["status"], status["error"]) == ("completed", None), status
    assert_results_say_only_what_imgpipe_stored(api, created, body)


@pytest.mark.parametrize("case", CASES)
def test_an_unsigned_header_ends_refused_failed_or_without_effect(api, root, case):
    extra, transform, expected = CASES[case]
    image = picture(seed=len(case))
    body = transform(image) if transform else image
    created = api.create("photo.jpg", "image/jpeg", len(body))
    assert_ends_as(api, root, created, body, put(created, body, extra), expected)


@pytest.mark.parametrize("declared", ["0", "1", "the source's size"])
def test_a_copy_of_another_upload_is_refused_by_the_store(api, root, declared):
    victim_bytes = picture(seed=99)
    victim = completed_upload(api, victim_bytes)
    size = len(victim_bytes) if declared == "the source's size" else int(declared)
    created = api.create("mine.jpg", "image/jpeg", size)
    own = b"x" * size
    response = put(created, own, {"x-amz-copy-source": f"/{root.bucket}/{victim['key']}"})
    assert response.status_code == 403 and "AccessDenied" in response.text, response.text
    assert root.size_of(created["key"]) is None, "no copy was made"
    # The URL still takes its own PUT, which ends as those bytes deserve: never as the victim's picture.
    assert put(created, own, {}).status_code == 200
    status = api.wait_final(created["id"])
    assert (status["status"], status["error"]["code"]) == ("failed", "empty_file" if size == 0 else "not_an_image")


def test_the_upload_identity_can_neither_read_nor_list(stack, root, api):
    victim = completed_upload(api, picture(seed=5))
    upload = client_as(stack.settings, UPLOAD)
    for attempt in (lambda: upload.stat_object(root.bucket, victim["key"]),
                    lambda: upload.get_object(root.bucket, victim["key"]).read(),
                    lambda: list(upload.list_objects(root.bucket, prefix="originals/")),
                    lambda: upload.remove_object(root.bucket, victim["key"])):
        with pytest.raises(S3Error) as refused:
            attempt()
        assert refused.value.code == "AccessDenied"
    assert root.size_of(victim["key"]) is not None


def test_the_read_identity_cannot_write_or_delete_and_the_others_only_do_their_part(stack, root, api):
    victim = completed_upload(api, picture(seed=6))
    read, worker, api_client = (client_as(stack.settings, role) for role in (READ, WORKER, API))
    refused = {
        "read puts": lambda: read.put_object(root.bucket, "resized/made-up.jpg", _stream(b"x"), 1),
        "read deletes": lambda: read.remove_object(root.bucket, victim["key"]),
        "read lists": lambda: list(read.list_objects(root.bucket, prefix="originals/")),
        "worker replaces an original": lambda: worker.put_object(root.bucket, victim["key"], _stream(b"x"), 1),
        "api reads": lambda: api_client.get_object(root.bucket, victim["key"]).read(),
        "api writes": lambda: api_client.put_object(root.bucket, "resized/made-up.jpg", _stream(b"x"), 1),
    }
    for what, attempt in refused.items():
        with pytest.raises(S3Error) as error:
            attempt()
        assert error.value.code == "AccessDenied", what
    assert read.get_object(root.bucket, victim["key"]).read() == root.client.get_object(
        root.bucket, victim["key"]).read()


def _stream(data: bytes):
    return io.BytesIO(data)


def test_the_root_key_is_in_no_url_the_api_hands_out(stack, api):
    data = picture(seed=7)
    created = completed_upload(api, data)
    root_key = stack.settings.s3_access_key
    answers = [json.dumps(created), *(api.get(path).text for path in (
        f"/uploads/{created['id']}/results", f"/uploads/{created['id']}", "/uploads?limit=5"))]
    assert all(root_key not in answer for answer in answers)
    upload_key, read_key = stack.settings.s3_upload_access_key, stack.settings.s3_read_access_key
    assert f"X-Amz-Credential={upload_key}%2F" in created["upload"]["url"]
    results = api.get(f"/uploads/{created['id']}/results").json()
    assert all(f"X-Amz-Credential={read_key}%2F" in url for url in result_urls(results).values())


def test_setup_changes_nothing_when_run_again_and_a_changed_secret_rotates(stack, api):
    assert apply_identities(stack.settings) == []
    bucket, victim = stack.settings.s3_bucket_name, completed_upload(api, picture(seed=8))
    rotated = dataclasses.replace(stack.settings, s3_read_secret_key=secrets.token_urlsafe(24))
    try:
        assert apply_identities(rotated) == [f"rotated the secret of read identity {rotated.s3_read_access_key}"]
        with pytest.raises(S3Error) as old:
            client_as(stack.settings, READ).get_object(bucket, victim["key"]).read()
        assert old.value.code == "SignatureDoesNotMatch"
        assert client_as(rotated, READ).get_object(bucket, victim["key"]).read()
        assert apply_identities(rotated) == []
    finally:
        apply_identities(stack.settings)


def test_given_keys_are_checked_and_an_upload_key_that_can_read_is_named(stack):
    assert check_given(dataclasses.replace(stack.settings, store_identities="given"))
    # An operator who gave the upload URLs a key with every right (here the root account's).
    reads_too = dataclasses.replace(stack.settings, store_identities="given", s3_access_key="", s3_secret_key="",
                                    s3_upload_access_key=stack.settings.s3_access_key,
                                    s3_upload_secret_key=stack.settings.s3_secret_key)
    with pytest.raises(IdentityProblem, match=r"upload key \(S3_UPLOAD_ACCESS_KEY\) may read and list"):
        check_given(reads_too)
    assert [item.object_name for item in Storage(stack.settings, ROOT).client.list_objects(
        stack.settings.s3_bucket_name, prefix="originals/imgpipe-setup-check-")] == [], "the probe is removed"


def test_each_process_holds_only_the_keys_of_its_own_identities(stack):
    secrets_of = {role: stack.settings.store_keys(role)[1] for role in (ROOT, UPLOAD, READ, WORKER, API, MULTIPART)}
    expected = {"api": {UPLOAD, READ, API, MULTIPART}, "relay": {WORKER, READ, MULTIPART}, "worker": {WORKER, READ}}
    for process, roles in expected.items():
        environ = Path(f"/proc/{stack.processes[process].pid}/environ").read_bytes().split(b"\0")
        held = {role for role, secret in secrets_of.items() if any(secret.encode() in item for item in environ)}
        assert held == roles, process


def test_setup_with_given_keys_checks_them_and_refuses_an_upload_key_that_can_read(stack, databases, tmp_path):
    env = {**stack.settings.to_env(), "IMGPIPE_STORE_IDENTITIES": "given", "S3_ACCESS_KEY": "", "S3_SECRET_KEY": ""}
    checked = CliRunner().invoke(cli, ["setup"], env=env)
    assert checked.exit_code == 0, checked.output
    assert "checked: upload identity: may put an original, may neither read nor list" in checked.output
    refused = CliRunner().invoke(cli, ["setup"], env={**env, "S3_UPLOAD_ACCESS_KEY": stack.settings.s3_access_key,
                                                      "S3_UPLOAD_SECRET_KEY": stack.settings.s3_secret_key})
    assert refused.exit_code == 1
    assert "the upload key (S3_UPLOAD_ACCESS_KEY) may read and list objects" in refused.output
