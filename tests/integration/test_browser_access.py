"""CORS (IMGPIPE_CORS_ORIGINS), browser upload tokens (IMGPIPE_UPLOAD_TOKEN_SECRET) and the
headers every answer carries, against the session's real database, MinIO and Redis."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from click.testing import CliRunner

from api import create_app
from api.access import StartRefused
from cli.main import cli
from imgpipe.upload_tokens import mint

APP_ORIGIN = "https://app.example.com"
SECRET = "browser-access-test-secret-" + "y" * 16
API_TOKEN = "correct horse battery staple"
NEW_UPLOAD = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000}
PREFLIGHT = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def make_client(stack, **settings):
    return create_app(dataclasses.replace(stack.settings, **settings)).test_client()


@pytest.fixture
def client(stack):
    return make_client(stack, cors_origins=f"{APP_ORIGIN}, http://localhost:5173", upload_token_secret=SECRET,
                       api_token=API_TOKEN)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def browser_token(token_id: str | None = None, seconds: int = 600, **caps) -> str:
    token_id = token_id or f"visitor-{time.monotonic_ns()}"
    return mint(SECRET, token_id, int(time.time()) + seconds, **caps)


# CORS

def test_a_preflight_from_a_listed_origin_is_answered_before_any_token(client):
    for path in ("/uploads", "/uploads/batch", "/uploads/" + "0" * 32 + "/status", "/upload/"):
        answer = client.options(path, headers={**PREFLIGHT, "Access-Control-Request-Method": "GET"
                                               if "status" in path else "POST"})
        assert answer.status_code == 200, path
        assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert set(answer.headers["Access-Control-Allow-Headers"].lower().split(", ")) == {"authorization",
                                                                                          "content-type"}
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert answer.headers["Access-Control-Max-Age"] == "3600"
        assert "Access-Control-Allow-Credentials" not in answer.headers
        assert "Origin" in answer.headers.get("Vary", "")


def test_calls_and_their_errors_carry_the_origin_so_the_page_can_read_them(client):
    created = client.post("/uploads", json=NEW_UPLOAD, headers={"Origin": APP_ORIGIN, **bearer(browser_token())})
    assert created.status_code == 201
    assert created.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    refused = client.post("/uploads", json=NEW_UPLOAD, headers={"Origin": "HTTP://LOCALHOST:5173"})
    assert (refused.status_code, refused.headers["Access-Control-Allow-Origin"]) == (401, "HTTP://LOCALHOST:5173")


def test_other_origins_and_other_paths_get_no_cors_headers(client):
    for origin in ("https://evil.example.com", "https://app.example.com.evil.net", "https://app.example.co"):
        answer = client.options("/uploads", headers={**PREFLIGHT, "Origin": origin})
        assert "Access-Control-Allow-Origin" not in answer.headers, origin
    for path in ("/metrics", "/", "/rq/", "/healthz"):
        answer = client.get(path, headers={"Origin": APP_ORIGIN, **bearer(API_TOKEN)})
        assert "Access-Control-Allow-Origin" not in answer.headers, path
    assert "Access-Control-Allow-Origin" not in client.post("/uploads", json=NEW_UPLOAD, headers=bearer(API_TOKEN)).headers


def test_without_cors_origins_a_preflight_gets_no_cors_headers(stack):
    answer = make_client(stack).options("/uploads", headers=PREFLIGHT)
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_any_origin_is_a_wildcard_without_credentials(stack):
    client = make_client(stack, cors_origins="*")
    answer = client.options("/uploads", headers={**PREFLIGHT, "Origin": "https://anyone.example.org"})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer.headers
    created = client.post("/uploads", json=NEW_UPLOAD, headers={"Origin": "https://anyone.example.org",
                                                                 **bearer(stack.settings.api_token)})
    assert (created.status_code, created.headers["Access-Control-Allow-Origin"]) == (201, "*")


# Browser upload tokens

def test_a_browser_token_creates_uploads_and_reads_only_its_own(client):
    token = browser_token()
    created = client.post("/uploads", json=NEW_UPLOAD, headers=bearer(token))
    batch = client.post("/uploads/batch", json={"files": [NEW_UPLOAD, NEW_UPLOAD]}, headers=bearer(token))
    assert (created.status_code, batch.status_code) == (201, 201)
    own = [created.get_json()["id"], *(entry["id"] for entry in batch.get_json()["uploads"])]
    for upload_id in own:
        for path in (f"/uploads/{upload_id}", f"/uploads/{upload_id}/status", f"/uploads/{upload_id}/results",
                     f"/upload/{upload_id}/status", f"/upload/{upload_id}/result"):
            assert client.get(path, headers=bearer(token)).status_code == 200, path

    someone_else = client.post("/uploads", json=NEW_UPLOAD, headers=bearer(API_TOKEN)).get_json()["id"]
    answer = client.get(f"/uploads/{someone_else}/status", headers=bearer(token))
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (403, "forbidden")
    assert client.get(f"/uploads/{someone_else}/status", headers=bearer(browser_token())).status_code == 403
    assert client.get(f"/uploads/{own[0]}/status", headers=bearer(API_TOKEN)).status_code == 200
    assert client.get("/uploads/" + "0" * 32, headers=bearer(token)).status_code == 404


def test_a_new_token_with_the_same_id_reads_the_uploads_of_the_earlier_one(client):
    first = browser_token("visitor-7-session")
    upload_id = client.post("/uploads", json=NEW_UPLOAD, headers=bearer(first)).get_json()["id"]
    later = browser_token("visitor-7-session", seconds=900)
    assert client.get(f"/uploads/{upload_id}", headers=bearer(later)).status_code == 200


def test_a_browser_token_opens_nothing_else(client):
    token = browser_token()
    for path in ("/", "/metrics", "/rq/", "/openapi.json", "/static/upload.js", "/nowhere"):
        answer = client.get(path, headers=bearer(token))
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (403, "forbidden"), path


def test_expired_and_tampered_tokens_are_401_json_errors(client):
    expired = browser_token(seconds=-1)
    valid = browser_token()
    payload, signature = valid.split(".")
    foreign = mint("z" * 40, "visitor", int(time.time()) + 600)
    for token, code in ((expired, "token_expired"), (f"{payload}x.{signature}", "invalid_token"),
                        (foreign, "invalid_token"), (browser_token(seconds=2 * 24 * 3600), "invalid_token")):
        answer = client.post("/uploads", json=NEW_UPLOAD, headers=bearer(token))
        assert answer.status_code == 401, code
        assert answer.get_json()["error"]["code"] == code
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/uploads", json=NEW_UPLOAD, headers=bearer("not a token")).get_json()["error"]["code"] == (
        "unauthorized")


def test_a_token_capping_files_is_used_up_across_single_and_batch_requests(client):
    token = browser_token(max_files=3)
    too_many = client.post("/uploads/batch", json={"files": [NEW_UPLOAD] * 4}, headers=bearer(token))
    assert (too_many.status_code, too_many.get_json()["error"]["code"]) == (403, "token_exhausted")
    batch = client.post("/uploads/batch", json={"files": [NEW_UPLOAD, {"filename": "x.txt", "content_type": "text/plain"},
                                                          NEW_UPLOAD]}, headers=bearer(token))
    assert batch.status_code == 201  # the refused entry is not counted
    assert client.post("/uploads", json=NEW_UPLOAD, headers=bearer(token)).status_code == 201
    exhausted = client.post("/uploads", json=NEW_UPLOAD, headers=bearer(token))
    assert (exhausted.status_code, exhausted.get_json()["error"]["code"]) == (403, "token_exhausted")
    assert client.post("/uploads", json=NEW_UPLOAD, headers=bearer(browser_token(max_files=3))).status_code == 201


def test_a_token_capping_bytes_counts_the_declared_sizes(client):
    token = browser_token(max_bytes=1000)
    assert client.post("/uploads", json={**NEW_UPLOAD, "size": 600}, headers=bearer(token)).status_code == 201
    over = client.post("/uploads", json={**NEW_UPLOAD, "size": 401}, headers=bearer(token))
    assert (over.status_code, over.get_json()["error"]["code"]) == (403, "token_exhausted")
    assert client.post("/uploads", json={**NEW_UPLOAD, "size": 400}, headers=bearer(token)).status_code == 201


def test_imgpipe_token_mints_what_the_api_accepts(client):
    minted = CliRunner().invoke(cli, ["token", "--files", "1", "--ttl", "60", "--id", "cli-visitor", "--json"],
                                env={"IMGPIPE_UPLOAD_TOKEN_SECRET": SECRET})
    assert minted.exit_code == 0, minted.output
    document = json.loads(minted.output)
    assert (document["id"], document["files"], document["bytes"]) == ("cli-visitor", 1, None)
    assert abs(document["exp"] - (time.time() + 60)) < 5
    assert client.post("/uploads", json=NEW_UPLOAD, headers=bearer(document["token"])).status_code == 201
    assert client.post("/uploads", json=NEW_UPLOAD, headers=bearer(document["token"])).status_code == 403
    refused = CliRunner().invoke(cli, ["token"], env={"IMGPIPE_UPLOAD_TOKEN_SECRET": ""})
    assert refused.exit_code == 2 and "IMGPIPE_UPLOAD_TOKEN_SECRET" in refused.output


def test_a_browser_token_only_api_gives_an_anonymous_request_less_than_a_browser_token(stack):
    client = make_client(stack, api_token="", upload_token_secret=SECRET)
    token = browser_token()
    own = client.post("/uploads", json=NEW_UPLOAD, headers=bearer(token)).get_json()["id"]
    assert client.get(f"/uploads/{own}/status", headers=bearer(token)).status_code == 200
    for anonymous in (client.post("/uploads", json=NEW_UPLOAD), client.get(f"/uploads/{own}/status"),
                      client.get("/uploads"), client.delete(f"/uploads/{own}"), client.get("/"), client.get("/rq/"),
                      client.get(f"/uploads/{own}/status", headers=bearer("not a token"))):
        assert (anonymous.status_code, anonymous.get_json()["error"]["code"]) == (401, "unauthorized")
        assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="imgpipe"'
    assert client.get(f"/uploads/{own}/status", headers=bearer(browser_token())).status_code == 403
    assert client.get("/metrics", headers=bearer(token)).status_code == 403


def test_cors_origins_without_an_api_token_are_refused_at_start(stack):
    with pytest.raises(StartRefused, match="IMGPIPE_CORS_ORIGINS is set without IMGPIPE_API_TOKEN"):
        make_client(stack, api_token="", cors_origins=APP_ORIGIN, upload_token_secret=SECRET)


# Headers for browsers

def test_every_answer_is_kept_from_being_sniffed_or_framed(client):
    answers = {"page": client.get("/", headers=bearer(API_TOKEN)),
               "created": client.post("/uploads", json=NEW_UPLOAD, headers=bearer(API_TOKEN)),
               "error": client.get("/uploads/" + "0" * 32, headers=bearer(API_TOKEN)),
               "unauthorized": client.get("/uploads/" + "0" * 32),
               "spec": client.get("/openapi.json", headers=bearer(API_TOKEN)),
               "dashboard": client.get("/rq/", headers=bearer(API_TOKEN))}
    for name, answer in answers.items():
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
        assert answer.headers["X-Frame-Options"] == "DENY", name
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], name
    for name in ("created", "error", "unauthorized", "spec"):
        assert answers[name].headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_page_policy_allows_its_own_script_and_the_store_and_nothing_inline(client, stack):
    policy = dict(part.strip().split(" ", 1) for part in client.get("/", headers=bearer(API_TOKEN))
                  .headers["Content-Security-Policy"].split(";"))
    store = stack.settings.s3_endpoint_url
    assert policy["default-src"] == "'self'"
    assert "script-src" not in policy and "style-src" not in policy  # default-src 'self': no inline
    assert policy["connect-src"] == f"'self' {store}"
    assert policy["img-src"] == f"'self' data: {store}"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
