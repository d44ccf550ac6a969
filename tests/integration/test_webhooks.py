"""Webhooks from the real stack to receivers on loopback: signed, retried until 2xx, recorded,
and never sent to an address inside the network unless the host is allowed by name."""

from __future__ import annotations

import io
import json
import time

import pytest
import requests
from PIL import Image
from rq.job import Job, JobStatus

from imgpipe.queues import fetch_job
from imgpipe.redis_connection import redis_client
from imgpipe.webhook_signature import verify
from pipeline_client import put_file
from polling import eventually
from processor.jobs import delivery_job_id
from webhook_receiver import webhook_receiver


def photo(path, size=(640, 480)):
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG")
    return path


def callback_when(api, upload_id: str, state: str, timeout: float = 20.0) -> dict:
    seen = []

    def in_state():
        seen.append(api.get(f"/uploads/{upload_id}").json()["callback"])
        return seen[-1]["state"] == state and seen[-1]

    return eventually(in_state, timeout, lambda: f"the callback of {upload_id} to be {state} (it is {seen[-1]})",
                      interval=0.1)


def test_a_completed_upload_posts_its_signed_record_to_the_callback(api, stack, tmp_path):
    with webhook_receiver() as hook:
        created = api.create_for(photo(tmp_path / "photo.jpg"), callback_url=f"{hook.url}/done?ref=42")
        put_file(created["upload"], tmp_path / "photo.jpg")
        assert api.wait_final(created["id"])["status"] == "completed"
        [request] = hook.wait_for(1)

    assert request.path == "/done?ref=42"
    assert request.headers["Content-Type"] == "application/json"
    assert verify(stack.settings.webhook_secret, request.headers, request.body, now=time.time())
    assert not verify("another secret", request.headers, request.body, now=time.time())
    sent = json.loads(request.body)
    record = api.get(f"/uploads/{created['id']}").json()
    assert set(sent) == set(record)
    assert (sent["id"], sent["status"], sent["error"], sent["image"]) == (created["id"], "completed", None, record["image"])
    assert sent["image"]["blurhash"] and sent["image"]["dominant_color"].startswith("#")
    assert sent["callback"] == {"url": f"{hook.url}/done?ref=42", "state": "pending", "attempts": []}
    thumbnail = requests.get(sent["results"]["thumbnail"], timeout=10)
    assert Image.open(io.BytesIO(thumbnail.content)).size == (300, 225)

    callback = callback_when(api, created["id"], "delivered")
    assert [(attempt["http_status"], attempt["error"]) for attempt in callback["attempts"]] == [(204, None)]


def test_a_failed_upload_is_announced_too_and_retried_until_a_2xx(api, stack, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("plain text\n" * 10)
    with webhook_receiver(answers=[500, 503], default=200) as hook:
        created = api.create_for(fake, callback_url=f"{hook.url}/hook")
        put_file(created["upload"], fake)
        assert api.wait_final(created["id"])["status"] == "failed"
        requests_seen = hook.wait_for(3)

    for request in requests_seen:
        assert verify(stack.settings.webhook_secret, request.headers, request.body, now=time.time())
        assert json.loads(request.body)["error"]["code"] == "not_an_image"
    assert all(later.at - earlier.at >= 0.9 for earlier, later in zip(requests_seen, requests_seen[1:])), "backoff"
    assert [len(json.loads(request.body)["callback"]["attempts"]) for request in requests_seen] == [0, 1, 2]
    callback = callback_when(api, created["id"], "delivered")
    assert [(attempt["http_status"], attempt["error"]) for attempt in callback["attempts"]] == [
        (500, "http_status"), (503, "http_status"), (200, None)]


def delivery_job_when_ended(stack, upload_id: str, timeout: float = 10.0) -> Job:
    """The upload's webhook job once RQ has finished it: no retry of it can be scheduled after that."""
    job = fetch_job(redis_client(stack.settings, "cli"), delivery_job_id(upload_id))
    eventually(lambda: job.get_status() == JobStatus.FINISHED, timeout, f"the delivery job of {upload_id} to finish")
    return job


def test_a_callback_never_answered_2xx_fails_after_its_tries_and_redirects_are_not_followed(api, stack, tmp_path):
    with webhook_receiver() as elsewhere, webhook_receiver(default=(302, {"Location": f"{elsewhere.url}/"})) as hook:
        created = api.create_for(photo(tmp_path / "photo.jpg"), callback_url=f"{hook.url}/hook")
        put_file(created["upload"], tmp_path / "photo.jpg")
        callback = callback_when(api, created["id"], "failed")
        job = delivery_job_when_ended(stack, created["id"])
        assert (job.get_status(), job.return_value()) == (JobStatus.FINISHED, "failed")
        assert len(hook.received) == 3, "one try and the two retries the stack's intervals allow, then no more"
        assert elsewhere.received == []
    assert [(attempt["http_status"], attempt["error"]) for attempt in callback["attempts"]] == [
        (302, "http_status")] * 3


@pytest.mark.parametrize("callback_url", [
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "https://192.168.1.20:8443/hook",
    "http://[::1]:9/hook",
    "http://localhost:9/hook",
    "http://0x7f.1/hook",
])
def test_callbacks_to_addresses_inside_the_network_are_refused_when_asked_for(api, callback_url):
    response = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10,
                                          "callback_url": callback_url})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "callback_not_allowed"
    assert " is a" in error["message"] and "address" in error["message"]
