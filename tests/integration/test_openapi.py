"""GET /openapi.json stays true: real answers from the running stack are validated against it,
and every route the app serves is described (and nothing it does not serve)."""

from __future__ import annotations

import json
import re

import pytest
import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from PIL import Image

from api import create_app
from api.dashboard import URL_PREFIX as DASHBOARD_PREFIX
from cli.stack import PROJECT_ROOT
from imgpipe.version import VERSION
from pipeline_client import put_file
from webhook_receiver import webhook_receiver


def owner(stack) -> dict:
    return {"Authorization": f"Bearer {stack.settings.api_token}"}


@pytest.fixture(scope="module")
def spec(stack):
    document = requests.get(stack.api_url + "/openapi.json", headers=owner(stack), timeout=10).json()
    validate_openapi(document)
    return document


def test_the_committed_document_is_what_the_api_serves(spec):
    committed = json.loads((PROJECT_ROOT / "docs" / "reference" / "openapi.json").read_text())
    assert spec == committed, "docs/reference/openapi.json is out of date: run `make docs` and commit it"
    assert spec["info"]["version"] == VERSION


@pytest.fixture
def check(spec, stack):
    """Call the live API and validate the answer's body against the documented schema."""
    def call(method: str, path: str, template: str, status: int, **kwargs) -> requests.Response:
        headers = {**owner(stack), **kwargs.pop("headers", {})}
        response = requests.request(method, stack.api_url + path, headers=headers, timeout=10, **kwargs)
        assert response.status_code == status, response.text
        documented = spec["paths"][template][method.lower()]["responses"][str(status)]
        media_type = response.headers["Content-Type"].split(";")[0]
        schema = documented["content"][media_type]["schema"]
        if media_type == "application/json":
            validator = Draft202012Validator({**schema, "components": spec["components"]})
            errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(response.json())]
            assert not errors, f"{method} {path} {status} does not match the spec: {errors}"
        return response
    return call


def jpeg(path, size=(640, 480)):
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG")
    return path


def test_creating_uploads_and_its_refusals_match(check):
    check("POST", "/uploads", "/uploads", 201, json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10})
    check("POST", "/upload/", "/upload", 201, json={"filename": "a.png", "content_type": "image/png", "size": 0})
    check("POST", "/uploads", "/uploads", 400, json={"filename": "a.png", "content_type": "image/png"})
    check("POST", "/uploads", "/uploads", 400, data="not json", headers={"Content-Type": "application/json"})
    check("POST", "/uploads", "/uploads", 400, json={"filename": "a.jpg"})
    check("POST", "/uploads", "/uploads", 415, json={"filename": "a.txt", "content_type": "text/plain"})
    check("POST", "/uploads", "/uploads", 400, json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10**12})
    check("POST", "/uploads", "/uploads", 413, data="x" * 200_000, headers={"Content-Type": "application/json"})


def test_unknown_ids_match(check):
    for path, template in (("/uploads/{}", "/uploads/{id}"), ("/uploads/{}/status", "/uploads/{id}/status"),
                           ("/uploads/{}/results", "/uploads/{id}/results"), ("/upload/{}/status", "/upload/{id}/status"),
                           ("/upload/{}/result", "/upload/{id}/result")):
        check("GET", path.format("0" * 32), template, 404)
    check("GET", "/uploads/not-an-id/status", "/uploads/{id}/status", 404)


def test_a_pending_then_completed_upload_matches_at_every_step(check, api, tmp_path):
    photo = jpeg(tmp_path / "photo.jpg")
    created = check("POST", "/uploads", "/uploads", 201,
                    json={"filename": "photo.jpg", "content_type": "image/jpeg", "size": photo.stat().st_size}).json()
    upload_id = created["id"]
    pending = check("GET", f"/uploads/{upload_id}/results", "/uploads/{id}/results", 200).json()
    assert pending["thumbnail"] is None
    check("GET", f"/uploads/{upload_id}", "/uploads/{id}", 200)

    put_file(created["upload"], photo)
    assert api.wait_final(upload_id)["status"] == "completed"

    check("GET", f"/uploads/{upload_id}/status", "/uploads/{id}/status", 200)
    check("GET", f"/upload/{upload_id}/status/", "/upload/{id}/status", 200)
    results = check("GET", f"/uploads/{upload_id}/results", "/uploads/{id}/results", 200).json()
    assert results["thumbnail"].startswith("http")
    check("GET", f"/upload/{upload_id}/result/", "/upload/{id}/result", 200)
    record = check("GET", f"/uploads/{upload_id}/", "/uploads/{id}", 200).json()
    assert record["image"]["width"] == 640


def test_a_failed_upload_matches(check, api, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("plain text\n" * 10)
    created = api.create_for(fake)
    put_file(created["upload"], fake)
    assert api.wait_final(created["id"])["status"] == "failed"
    record = check("GET", f"/uploads/{created['id']}", "/uploads/{id}", 200).json()
    assert record["error"]["code"] == "not_an_image"
    check("GET", f"/uploads/{created['id']}/status", "/uploads/{id}/status", 200)


def test_batches_formats_and_callbacks_match(check, api, tmp_path):
    check("POST", "/uploads/batch", "/uploads/batch", 201, json={"files": [
        {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10},
        {"filename": "a.jpg", "content_type": "image/jpeg"},
        {"filename": "a.txt", "content_type": "text/plain", "size": 10}]})
    check("POST", "/uploads/batch/", "/uploads/batch", 400, json={"files": []})
    check("POST", "/uploads", "/uploads", 400,
          json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": "http://10.0.0.1/hook"})
    check("POST", "/uploads", "/uploads", 400,
          json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": ["gif"]})
    photo = jpeg(tmp_path / "photo.jpg")
    with webhook_receiver(answers=[500]) as hook:
        created = check("POST", "/uploads", "/uploads", 201, json={
            "filename": "photo.jpg", "content_type": "image/jpeg", "formats": ["png", "webp"],
            "size": photo.stat().st_size, "callback_url": hook.url}).json()
        pending = check("GET", f"/uploads/{created['id']}", "/uploads/{id}", 200).json()
        assert pending["callback"]["state"] == "pending"
        put_file(created["upload"], photo)
        assert api.wait_final(created["id"])["status"] == "completed"
        hook.wait_for(2)
    record = check("GET", f"/uploads/{created['id']}", "/uploads/{id}", 200).json()
    assert [attempt["http_status"] for attempt in record["callback"]["attempts"]][:1] == [500]
    results = check("GET", f"/uploads/{created['id']}/results", "/uploads/{id}/results", 200).json()
    assert results["resized"] is None and results["formats"]["webp"]["resized"].startswith("http")


def test_listing_and_deleting_match(check, api, tmp_path):
    photo = jpeg(tmp_path / "photo.jpg")
    created = api.create_for(photo)
    put_file(created["upload"], photo)
    assert api.wait_final(created["id"])["status"] == "completed"
    api.create()

    page = check("GET", "/uploads?limit=1", "/uploads", 200).json()
    assert page["next_cursor"]
    after = check("GET", f"/uploads/?limit=1&cursor={page['next_cursor']}", "/uploads", 200).json()
    assert after["uploads"][0]["id"] == created["id"]
    check("GET", "/uploads?status=completed", "/uploads", 200)
    for query in ("limit=0", "limit=101", "status=done", "cursor=nope", "limit=1&limit=2", "page=2"):
        check("GET", f"/uploads?{query}", "/uploads", 400)

    deleted = check("DELETE", f"/uploads/{created['id']}", "/uploads/{id}", 200).json()
    assert deleted["status"] == "deleted"
    assert check("DELETE", f"/uploads/{created['id']}/", "/uploads/{id}", 200).json() == deleted
    record = check("GET", f"/uploads/{created['id']}", "/uploads/{id}", 200).json()
    assert record["deleted_at"] == deleted["updated_at"] and record["results"]["original"] is None
    check("GET", f"/uploads/{created['id']}/results", "/uploads/{id}/results", 200)
    listed = check("GET", "/uploads?status=deleted&limit=100", "/uploads", 200).json()
    assert created["id"] in [upload["id"] for upload in listed["uploads"]]
    check("DELETE", f"/uploads/{'0' * 32}", "/uploads/{id}", 404)


def test_service_endpoints_match(check):
    check("GET", "/healthz", "/healthz", 200)
    check("GET", "/metrics", "/metrics", 200)
    check("GET", "/openapi.json", "/openapi.json", 200)
    check("GET", "/", "/", 200)


def test_every_route_is_described_and_nothing_else(spec, stack):
    app = create_app(stack.settings)
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith(DASHBOARD_PREFIX):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: "{id}" if match[1] == "upload_id" else f"{{{match[1]}}}",
                      rule.rule).rstrip("/") or "/"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method.lower()))
    documented = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert served == documented


def test_the_multipart_calls_match(check):
    created = check("POST", "/uploads", "/uploads", 201,
                    json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "multipart": True}).json()
    base = f"/uploads/{created['id']}/multipart"
    part = check("GET", f"{base}/parts/1", "/uploads/{id}/multipart/parts/{number}", 200).json()
    check("GET", f"{base}/parts/2", "/uploads/{id}/multipart/parts/{number}", 400)
    check("GET", f"{base}/parts", "/uploads/{id}/multipart/parts", 200)
    check("POST", f"{base}/complete", "/uploads/{id}/multipart/complete", 409,
          json={"parts": [{"part_number": 1, "etag": "x"}]})
    check("POST", f"{base}/complete", "/uploads/{id}/multipart/complete", 400, json={"parts": []})
    etag = requests.put(part["url"], data=b"0123456789", headers=part["headers"], timeout=10).headers["ETag"]
    check("POST", f"{base}/complete", "/uploads/{id}/multipart/complete", 200,
          json={"parts": [{"part_number": 1, "etag": etag}]})
    other = check("POST", "/uploads/batch", "/uploads/batch", 201, json={"files": [
        {"filename": "b.jpg", "content_type": "image/jpeg", "size": 10, "multipart": True}]}).json()
    check("DELETE", f"/uploads/{other['uploads'][0]['id']}/multipart", "/uploads/{id}/multipart", 200)
    check("DELETE", f"/uploads/{other['uploads'][0]['id']}/multipart", "/uploads/{id}/multipart", 409)
    single = check("POST", "/uploads", "/uploads", 201, json={"filename": "c.jpg", "content_type": "image/jpeg",
                                                               "size": 10}).json()
    check("GET", f"/uploads/{single['id']}/multipart/parts", "/uploads/{id}/multipart/parts", 409)
