"""Limits that keep one client from taking the service, tried as an outsider would against a
real stack: rate limits by credential (shared by the API's two gunicorn workers through Redis),
webhooks kept to web ports and never echoing their receiver, no webhook for an upload that never
happened, a memory cap per job, a body nested 50,000 deep, and a /healthz that says nothing of
why a service is down.

Each of these is the same on either database engine, so the stack runs on SQLite alone."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from api.login import COOKIE
from imgpipe.processes import memory_kib
from imgpipe.redis_connection import redis_client
from imgpipe.upload_tokens import mint
from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from stacks import process_tree, running_stack

BAD_GUESSES = 5  # the stack's IMGPIPE_RATE_LIMIT_BAD_CREDENTIAL, per minute
ANONYMOUS = 8
PER_UPLOAD_TOKEN = 4
JOB_ROOM_MB = 150  # what a job may add to the worker's address space in the memory test
PEER_WORDS = b"peer-says-3f9c1a<script>alert(1)</script>"


class Peer:
    """A webhook receiver that answers by path: /garbage with a status line of its own words,
    /error with a 500 carrying them in its body, anything else 204; it records every path."""

    def __init__(self):
        self.paths: list[str] = []
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                path = head.split(b" ", 2)[1].decode()
                peer.paths.append(path)
                if path.startswith("/garbage"):
                    self.wfile.write(PEER_WORDS + b"\r\n\r\n")
                elif path.startswith("/error"):
                    self.wfile.write(b"HTTP/1.1 500 " + PEER_WORDS + b"\r\nContent-Length: %d\r\n\r\n" % len(PEER_WORDS)
                                     + PEER_WORDS)
                else:
                    self.wfile.write(b"HTTP/1.1 204 No Content\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def peer():
    receiver = Peer()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, peer):
    with running_stack(
            tmp_path_factory.mktemp("limits"),
            api_token=secrets.token_urlsafe(24), upload_token_secret=secrets.token_hex(32),
            rate_limit_bad_credential=f"{BAD_GUESSES} per minute", rate_limit_anonymous=f"{ANONYMOUS} per minute",
            rate_limit_upload_token=f"{PER_UPLOAD_TOKEN} per minute",
            webhook_allow_hosts="127.0.0.1", webhook_ports=f"80,443,{peer.port}", webhook_retry_intervals="1",
            upload_url_ttl=3, upload_grace=1, sweep_min_age=0.5, trusted_proxies=1) as running:
        yield running


@pytest.fixture
def api(stack):
    client = Api(stack.api_url)
    client.http.headers["Authorization"] = f"Bearer {stack.settings.api_token}"
    return client


def outsider(stack, path: str, method: str = "GET", **kwargs) -> requests.Response:
    """One request on a new connection, as a separate client's would be."""
    return requests.request(method, stack.api_url + path, timeout=10, **kwargs)


def api_workers(stack) -> list[int]:
    """The gunicorn workers (the processes below its arbiter)."""
    return process_tree(stack.processes["api"].pid)[1:]


@contextlib.contextmanager
def only_worker(stack, serving: int):
    """Every other gunicorn worker stopped (SIGSTOP), so requests reach `serving` alone; for a few
    seconds only, far below gunicorn's 30 s worker timeout."""
    others = [pid for pid in api_workers(stack) if pid != serving]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def test_wrong_token_guesses_get_401_then_429_with_retry_after_counted_across_api_workers(stack):
    first, second = api_workers(stack)
    guesses = []
    with only_worker(stack, first):
        guesses += [outsider(stack, "/uploads", headers={"Authorization": f"Bearer guess-{n}"}) for n in range(3)]
    with only_worker(stack, second):
        guesses += [outsider(stack, "/uploads", headers={"Authorization": f"Bearer guess-{n}"})
                    for n in range(3, BAD_GUESSES)]
        over_on_second = outsider(stack, "/uploads", headers={"Authorization": "Bearer one-more"})
    with only_worker(stack, first):
        over_on_first = outsider(stack, "/uploads", "POST", auth=("imgpipe", "basic-guess"), json={})

    assert [guess.status_code for guess in guesses] == [401] * BAD_GUESSES
    for refused in (over_on_second, over_on_first):
        assert refused.status_code == 429, "the workers share one count: 3 guesses on one, 2 on the other"
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert redis_client(stack.settings, "cli").keys("imgpipe:limits:*"), "counted in Redis"
    # The right token is still let through from the same address: guesses slow guessers only.
    assert outsider(stack, "/uploads", headers={"Authorization": f"Bearer {stack.settings.api_token}"}).status_code == 200


def test_requests_without_a_credential_get_401_then_429(stack):
    answers = [outsider(stack, "/uploads", "POST", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1})
               for _ in range(ANONYMOUS + 2)]
    assert [answer.status_code for answer in answers] == [401] * ANONYMOUS + [429] * 2
    assert answers[-1].json()["error"]["code"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1
    assert outsider(stack, "/healthz").status_code == 200, "/healthz stays open to probes"


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(stack):
    """IMGPIPE_TRUSTED_PROXIES=1: the address the proxy saw is the client's (the limits' count of
    127.0.0.1 itself, used up by the test before, does not matter to them)."""
    def from_client(address: str) -> int:
        return outsider(stack, "/uploads", headers={"X-Forwarded-For": address}).status_code

    assert [from_client("203.0.113.7") for _ in range(ANONYMOUS + 1)] == [401] * ANONYMOUS + [429]
    assert from_client("203.0.113.8") == 401, "another client behind the proxy is not refused for the first one"
    assert from_client("198.51.100.1, 203.0.113.7") == 429, "only the address the trusted proxy added counts"


def test_a_browser_upload_token_is_limited_on_its_own_creations(stack, api):
    expires = int(time.time()) + 300
    one, other = (mint(stack.settings.upload_token_secret, name, expires) for name in ("page-one", "page-two"))
    body = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 100}

    made = [outsider(stack, "/uploads", "POST", json=body, headers={"Authorization": f"Bearer {one}"})
            for _ in range(PER_UPLOAD_TOKEN + 1)]
    assert [answer.status_code for answer in made] == [201] * PER_UPLOAD_TOKEN + [429]
    assert "Retry-After" in made[-1].headers
    batch = outsider(stack, "/uploads/batch", "POST", json={"files": [body]}, headers={"Authorization": f"Bearer {one}"})
    assert batch.status_code == 429
    status = outsider(stack, f"/uploads/{made[0].json()['id']}/status", headers={"Authorization": f"Bearer {one}"})
    assert status.status_code == 200, "reading its own uploads is not limited: a page polls"
    assert outsider(stack, "/uploads", "POST", json=body, headers={"Authorization": f"Bearer {other}"}).status_code == 201


def test_a_bulk_with_the_api_token_never_meets_a_429(stack, api):
    body = {"filename": "bulk.jpg", "content_type": "image/jpeg", "size": 100}

    def create(_):
        return requests.post(f"{stack.api_url}/uploads", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {stack.settings.api_token}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, range(400)))
    batches = [api.post("/uploads/batch", json={"files": [body] * 50}).status_code for _ in range(4)]
    assert statuses == [201] * 400 and batches == [201] * 4, "400 single and 200 batched uploads, none refused"


@pytest.mark.parametrize("callback_url", [
    "https://93.184.215.14:8080/hook", "http://127.0.0.1:8080/hook", "http://hooks.example.com:22/",
])
def test_a_callback_on_a_port_other_than_the_allowed_ones_is_refused_at_creation(api, callback_url):
    response = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10,
                                          "callback_url": callback_url})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "callback_not_allowed"
    assert "port" in response.json()["error"]["message"]


def callback_of(api, upload_id: str, state: str) -> dict:
    def settled():
        callback = api.get(f"/uploads/{upload_id}").json()["callback"]
        return callback if callback["state"] == state else None
    return eventually(settled, timeout=30, what=f"the callback of {upload_id} to be {state}")


@pytest.mark.parametrize("path, http_status, error", [("/garbage", None, "bad_response"), ("/error", 500, "http_status")])
def test_what_a_receiver_answers_is_never_stored_only_its_category_and_status(api, peer, tmp_path, path, http_status,
                                                                               error):
    [picture] = make_jpegs(tmp_path, 1)
    created = api.create_for(picture, callback_url=peer.url(path))
    put_file(created["upload"], picture)
    callback = callback_of(api, created["id"], "failed")

    assert [(attempt["http_status"], attempt["error"]) for attempt in callback["attempts"]] == [(http_status, error)] * 2
    record = api.get(f"/uploads/{created['id']}").content
    assert PEER_WORDS not in record and b"peer-says" not in record


def test_an_upload_never_made_gets_no_webhook_unless_asked_for(api, peer, stack):
    created = api.create("never.jpg", callback_url=peer.url(f"/never-{secrets.token_hex(4)}"))
    assert api.wait_final(created["id"], timeout=30)["error"]["code"] == "upload_expired"
    callback = callback_of(api, created["id"], "skipped")
    assert callback["attempts"] == []
    assert not any(path.startswith("/never-") for path in peer.paths), "no request was made for it"
    assert "webhook skipped" in (stack.var_dir / "log" / "worker.log").read_text()

    # Asked for, with IMGPIPE_WEBHOOK_EXPIRED=1, it is delivered like any other.
    stack.stop_process("worker")
    stack.settings = dataclasses.replace(stack.settings, webhook_expired=1)
    stack.start_worker()
    path = f"/asked-{secrets.token_hex(4)}"
    created = api.create("asked.jpg", callback_url=peer.url(path))
    assert api.wait_final(created["id"], timeout=30)["error"]["code"] == "upload_expired"
    attempts = callback_of(api, created["id"], "delivered")["attempts"]
    assert [(attempt["http_status"], attempt["error"]) for attempt in attempts] == [(204, None)]
    assert path in peer.paths


def worker_child(stack) -> int:
    """The worker process below `imgpipe worker`'s supervisor (RQ's scheduler forks below it in turn)."""
    return process_tree(stack.processes["worker"].pid)[1]


def address_space_mb(pid: int) -> int:
    return memory_kib(pid)["VmSize"] // 1024


def test_a_picture_that_needs_more_memory_than_a_job_may_use_fails_and_the_next_completes(api, stack, tmp_path):
    """The cap is set from the worker as it runs here (its address space after small pictures,
    plus JOB_ROOM_MB): a small picture fits in that room, one at the 100 MP pixel limit needs
    about 400 MB more (measured) and does not."""
    [huge] = make_jpegs(tmp_path / "huge", 1, size=(10_000, 10_000))
    small = make_jpegs(tmp_path / "small", 2)

    def upload(path) -> dict:
        created = api.create_for(path)
        put_file(created["upload"], path)
        return api.wait_final(created["id"], timeout=60)

    assert upload(small[0])["status"] == "completed"
    cap = address_space_mb(worker_child(stack)) + JOB_ROOM_MB
    stack.stop_process("worker")
    stack.settings = dataclasses.replace(stack.settings, job_memory_mb=cap)
    stack.start_worker()
    eventually(lambda: "worker memory cap: %d MB" % cap in (stack.var_dir / "log" / "worker.log").read_text(),
               timeout=30, what="the worker to start with its cap")
    child = worker_child(stack)

    final = upload(huge)
    assert (final["status"], final["error"]["code"]) == ("failed", "out_of_memory")
    assert upload(small[1])["status"] == "completed"
    assert worker_child(stack) == child, "the same worker process went on: nothing was killed"
    assert "ended unasked" not in (stack.var_dir / "log" / "worker.log").read_text()


def test_a_body_nested_50000_deep_is_400_invalid_request(api):
    """50,000 opened arrays is 50,000 bytes, within the body limit (64 KiB); 32,000 closed ones too."""
    for path, body in (("/uploads", "[" * 50_000), ("/uploads/batch", '{"files": ' + "[" * 50_000),
                       ("/uploads", "[" * 32_000 + "]" * 32_000), ("/uploads", '{"a":' * 10_000 + "1" + "}" * 10_000)):
        response = api.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_request"


def test_healthz_with_a_service_down_names_it_and_says_nothing_of_why(stack):
    stack.stop_process("minio")
    try:
        # A list, not the answer itself: a 503 Response is false.
        [health] = eventually(lambda: [answer] if (answer := outsider(stack, "/healthz")).status_code == 503 else None,
                              timeout=20, what="/healthz to see MinIO down")
    finally:
        stack.start_minio()
    body = health.json()
    assert body["down"] == ["storage"] and body["checks"] == {"database": "ok", "redis": "ok", "storage": "down"}
    assert body["error"] == {"code": "unavailable", "message": "down: storage"}
    text = health.text
    host, port = stack.settings.s3_endpoint_url.rsplit("/", 1)[-1].split(":")
    for detail in (port, "timed out", "Timeout", "Error", "http", "urllib3"):
        assert detail not in text, f"{detail!r} in {text}"
    assert "healthz: storage is down" in (stack.var_dir / "log" / "api.log").read_text(), "the reason is logged"
    eventually(lambda: outsider(stack, "/healthz").status_code == 200, timeout=20, what="MinIO back")


def test_guesses_at_a_login_link_or_a_session_cookie_are_limited_like_token_guesses(stack):
    """Every use of /login, and a session cookie the API did not sign, counts as a guess; from a
    client of its own behind the trusted proxy, since this module's guesses from 127.0.0.1 are used up."""
    def guess(n: int) -> int:
        headers = {"X-Forwarded-For": "203.0.113.50"}
        if n % 2:
            return outsider(stack, f"/login?code=guess-{n}", headers=headers, allow_redirects=False).status_code
        return outsider(stack, "/uploads", headers=headers, cookies={COOKIE: f"forged-{n}"}).status_code

    assert [guess(n) for n in range(BAD_GUESSES + 1)] == [401] * BAD_GUESSES + [429]
