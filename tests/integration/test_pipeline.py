"""The whole flow through HTTP against real MinIO, Redis, relay and worker."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
import requests
from PIL import Image

from cli.stack import PROJECT_ROOT
from imgpipe import uploads
from imgpipe.engines import split_url
from imgpipe.version import VERSION
from pipeline_client import curl_put, put_file


def write_jpeg(path, size=(1600, 1200)):
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG", quality=90)
    return path


def upload(api, path, content_type="image/jpeg", filename=None) -> dict:
    created = api.create(filename or path.name, content_type, path.stat().st_size)
    put_file(created["upload"], path)
    return created


def fetch_image(url: str) -> Image.Image:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def test_a_jpeg_becomes_four_fetchable_objects(api, tmp_path):
    source = write_jpeg(tmp_path / "holiday photo.jpg")
    created = upload(api, source)
    assert created["status"] == "pending"
    assert created["key"] == f"originals/{created['id']}.jpg"

    status = api.wait_final(created["id"])
    assert status["status"] == "completed", status
    assert status["error"] is None

    results = api.get(f"/uploads/{created['id']}/results").json()
    original = requests.get(results["original"], timeout=10).content
    assert original == source.read_bytes()
    sizes = {kind: fetch_image(results[kind]) for kind in ("resized", "compressed", "thumbnail")}
    assert {kind: image.format for kind, image in sizes.items()} == dict.fromkeys(sizes, "JPEG")
    assert sizes["resized"].size == (1024, 768)
    assert sizes["compressed"].size == (1600, 1200)
    assert sizes["thumbnail"].size == (300, 225)

    record = api.get(f"/uploads/{created['id']}").json()
    placeholder = {"blurhash": record["image"].pop("blurhash"), "dominant_color": record["image"].pop("dominant_color")}
    assert record["image"] == {"width": 1600, "height": 1200, "format": "JPEG", "bytes": len(original)}
    assert len(placeholder["blurhash"]) == 28 and len(placeholder["dominant_color"]) == 7
    assert record["filename"] == "holiday photo.jpg"


def test_results_are_null_until_completed(api):
    created = api.create()
    results = api.get(f"/uploads/{created['id']}/results").json()
    assert results["status"] == "pending"
    assert [results[k] for k in ("original", "resized", "compressed", "thumbnail")] == [None] * 4


def test_a_non_image_ends_failed_with_a_code(api, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n" * 20)
    created = upload(api, text)
    status = api.wait_final(created["id"])
    assert status["status"] == "failed"
    assert status["error"]["code"] == "not_an_image"
    assert status["error"]["message"]


def test_an_empty_upload_ends_failed(api, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    created = upload(api, empty, "image/png")
    assert api.wait_final(created["id"])["error"]["code"] == "empty_file"


def test_the_worker_goes_on_after_a_bad_upload(api, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    good = write_jpeg(tmp_path / "good.jpg", (400, 300))
    first, second = upload(api, bad), upload(api, good)
    assert api.wait_final(first["id"])["status"] == "failed"
    assert api.wait_final(second["id"])["status"] == "completed"


@pytest.mark.parametrize("path", ["/uploads/{id}", "/uploads/{id}/status", "/uploads/{id}/results",
                                  "/uploads/{id}/status/", "/upload/{id}/status/", "/upload/{id}/result/"])
def test_unknown_ids_are_404_json(api, path):
    for unknown in ("0" * 32, "not-an-id"):
        response = api.get(path.format(id=unknown))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_trailing_slashes_and_singular_paths_answer(api):
    created = api.post("/upload/", json={"filename": "a.png", "content_type": "image/png", "size": 10})
    assert created.status_code == 201
    upload_id = created.json()["id"]
    assert api.post("/uploads/", json={"filename": "a.png", "content_type": "image/png", "size": 10}).status_code == 201
    for path in (f"/uploads/{upload_id}/", f"/uploads/{upload_id}/status/", f"/uploads/{upload_id}/results/",
                 f"/upload/{upload_id}/status/", f"/upload/{upload_id}/result/"):
        response = api.get(path)
        assert response.status_code == 200, path
        assert response.json()["id"] == upload_id


def test_malformed_requests_get_4xx_json(api):
    cases = [
        (dict(data="{not json", headers={"Content-Type": "application/json"}), 400),
        (dict(data="filename=a.jpg"), 400),
        (dict(json={"filename": "a.jpg"}), 400),
        (dict(json=["a.jpg"]), 400),
        (dict(json={"filename": "a.txt", "content_type": "text/plain"}), 415),
        (dict(json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10**12}), 400),
        (dict(json={"filename": "a.jpg", "content_type": "image/jpeg"}), 400),
        (dict(data="x" * 200_000, headers={"Content-Type": "application/json"}), 413),
    ]
    for kwargs, expected in cases:
        response = api.post("/uploads", **kwargs)
        assert response.status_code == expected, (kwargs, response.text)
        assert set(response.json()["error"]) == {"code", "message"}
    response = api.http.delete(api.base + "/uploads")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    response = api.get("/nowhere")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_keys_never_come_from_the_filename(api):
    created = api.create("../../resized/evil.jpg", "image/jpeg")
    assert created["key"] == f"originals/{created['id']}.jpg"
    record = api.get(f"/uploads/{created['id']}").json()
    assert record["filename"] == "evil.jpg"


def test_healthz_reports_every_dependency_and_the_database_engine(api, stack):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}
    assert response.json()["database"] == {"ok": True, "engine": split_url(stack.settings.database)[0]}
    assert response.json()["version"] == VERSION


@pytest.mark.parametrize("path", ["/upload/", "/uploads"])
def test_a_file_posted_as_a_form_is_told_the_two_steps(api, stack, tmp_path, path):
    """What a client of the replaced service sends (curl -F file=@photo.jpg) gets the recipe, not a JSON complaint."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(2 * 1024 * 1024))  # far over the API's 64 KiB body limit: it is never read
    result = subprocess.run(["curl", "-sS", "-F", f"file=@{photo}", "-H", f"Authorization: Bearer {stack.settings.api_token}",
                             api.base + path], capture_output=True, text=True, timeout=30)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_request"
    assert "POST /uploads" in error["message"] and "PUT the file to the upload.url" in error["message"]
    assert "docs/getting-started.md" in error["message"]
    assert (PROJECT_ROOT / "docs" / "getting-started.md").exists()


def test_the_upload_url_signs_the_declared_content_type(api, tmp_path):
    source = write_jpeg(tmp_path / "a.jpg", (50, 50))
    created = api.create_for(source)
    wrong = dict(created["upload"], headers={**created["upload"]["headers"], "Content-Type": "text/html"})
    assert curl_put(wrong, source).stdout == "403"
    missing = dict(created["upload"], headers={"Content-Type": "image/jpeg"})
    assert curl_put(missing, source).stdout in ("400", "403")
    assert curl_put(created["upload"], source).stdout == "200"


def test_an_original_is_written_once(api, tmp_path):
    first = write_jpeg(tmp_path / "first.jpg", (640, 480))
    second = write_jpeg(tmp_path / "second.jpg", (64, 48))
    created = upload(api, first)
    assert curl_put(created["upload"], second).stdout == "412"
    assert api.wait_final(created["id"])["status"] == "completed"
    record = api.get(f"/uploads/{created['id']}").json()
    assert (record["image"]["width"], record["image"]["height"]) == (640, 480)
    assert requests.get(record["results"]["original"], timeout=10).content == first.read_bytes()


def test_the_bucket_is_private(api, stack, tmp_path):
    created = upload(api, write_jpeg(tmp_path / "a.jpg", (50, 50)))
    api.wait_final(created["id"])
    bucket = f"{stack.settings.s3_endpoint_url}/{stack.settings.s3_bucket_name}"
    row = uploads.get_upload(uploads.connect(stack.settings.database), created["id"])
    thumbnail = uploads.derivative_objects(row)["thumbnail"]["jpeg"].key
    assert requests.get(api.get(f"/uploads/{created['id']}/results").json()["thumbnail"], timeout=10).ok
    for path in (created["key"], thumbnail, ""):
        response = requests.get(f"{bucket}/{path}", timeout=10)
        assert response.status_code == 403, path
