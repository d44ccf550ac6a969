"""What operators use, against the real stack: /metrics, the RQ dashboard at /rq, the API token
(on the API, the dashboard and the CLI), and JSON logs from gunicorn."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import requests
from click.testing import CliRunner
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from api import create_app
from api.metrics import PROCESSING_BUCKETS
from cli.main import cli
from cli.stack import PROJECT_ROOT, free_port
from imgpipe.queues import make_queue, make_webhook_queue, relayed_count_key
from imgpipe.redis_connection import redis_client
from pipeline_client import put_file
from polling import eventually

TOKEN = "s3cret-token"


def owner(stack) -> dict:
    """The stack's own API token, as every caller sends it."""
    return {"Authorization": f"Bearer {stack.settings.api_token}"}


def metric_samples(text: str) -> dict:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_uploads_processing_time_queue_and_events(api, stack, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.radial_gradient("L").resize((800, 600)).convert("RGB").save(photo)
    created = api.create_for(photo)
    put_file(created["upload"], photo)
    assert api.wait_final(created["id"])["status"] == "completed"

    response = requests.get(stack.api_url + "/metrics", headers=owner(stack), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = metric_samples(response.text)

    assert {status for (name, labels) in samples if name == "imgpipe_uploads" for _, status in labels} == {
        "pending", "processing", "completed", "failed", "deleted"}
    completed = samples[("imgpipe_uploads", (("status", "completed"),))]
    assert completed >= 1
    assert samples[("imgpipe_processing_seconds_count", ())] == completed
    buckets = [samples[("imgpipe_processing_seconds_bucket", (("le", repr(bound)),))] for bound in PROCESSING_BUCKETS]
    assert buckets == sorted(buckets)
    assert samples[("imgpipe_processing_seconds_bucket", (("le", "+Inf"),))] == completed
    assert 0 < samples[("imgpipe_processing_seconds_sum", ())] < 120 * completed
    connection = redis_client(stack.settings, "cli")
    for queue in (make_queue(connection, stack.settings), make_webhook_queue(connection, stack.settings)):
        assert samples[("imgpipe_queue_depth", (("queue", queue.name),))] == queue.count == 0
    relayed = int(connection.get(relayed_count_key(stack.settings)) or 0)
    assert relayed >= 1
    assert samples[("imgpipe_events_relayed_total", ())] == relayed


def test_the_dashboard_shows_the_queue(stack):
    page = requests.get(stack.api_url + "/rq/", headers=owner(stack), timeout=10)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    queues = requests.get(stack.api_url + "/rq/0/data/queues.json", headers=owner(stack), timeout=10).json()
    assert "images" in [queue["name"] for queue in queues["queues"]]
    workers = requests.get(stack.api_url + "/rq/0/data/workers.json", headers=owner(stack), timeout=10).json()
    assert len(workers["workers"]) >= 1


@pytest.fixture(scope="module")
def token_api(stack):
    """The same app with IMGPIPE_API_TOKEN set, served over HTTP on the stack's services."""
    app = create_app(dataclasses.replace(stack.settings, api_token=TOKEN))
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def dashboard_asset(stack) -> str:
    """One of the dashboard's own static files, as its page links it."""
    page = requests.get(stack.api_url + "/rq/", headers=owner(stack), timeout=10).text
    return next(path for path in re.findall(r'(?:href|src)="([^"]+)"', page) if "/rq/static/" in path)


def test_with_a_token_everything_but_healthz_needs_it(token_api, stack):
    answers_with_token = {"/uploads/" + "0" * 32 + "/status": 404, "/metrics": 200, "/openapi.json": 200, "/": 200,
                          "/static/upload.js": 200, "/rq/": 200, "/rq/0/data/queues.json": 200,
                          dashboard_asset(stack): 200}
    assert requests.get(token_api + "/healthz", timeout=10).status_code == 200
    for path, status in answers_with_token.items():
        refused = requests.get(token_api + path, timeout=10)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="imgpipe"'
        assert requests.get(token_api + path, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
        bearer = requests.get(token_api + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert bearer.status_code == status, path
        assert requests.get(token_api + path, auth=("anyone", TOKEN), timeout=10).status_code == status, path
    created = requests.post(token_api + "/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1},
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert created.status_code == 201


def test_the_cli_sends_the_token(token_api, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.linear_gradient("L").resize((400, 300)).convert("RGB").save(photo)
    runner = CliRunner()

    refused = runner.invoke(cli, ["upload", "--api", token_api, "--no-wait", str(photo)], env={"IMGPIPE_API_TOKEN": ""})
    assert refused.exit_code == 1
    assert "unauthorized" in refused.stdout

    accepted = runner.invoke(cli, ["upload", "--api", token_api, "--json", str(photo)], env={"IMGPIPE_API_TOKEN": TOKEN})
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(accepted.stdout)["uploads"][0]["status"] == "completed"


def test_gunicorn_logs_one_json_object_per_line(stack, tmp_path):
    port = free_port()
    log = tmp_path / "api.log"
    env = {**os.environ, **stack.settings.to_env(), "LOG_FORMAT": "json"}
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                   "api.wsgi:app"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT)
    def created_one():
        try:
            return requests.post(f"http://127.0.0.1:{port}/uploads", timeout=2, headers=owner(stack),
                                 json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1}).json()
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its worker still booting
            return None

    try:
        created = eventually(created_one, 20, lambda: f"gunicorn to answer; its log:\n{log.read_text()}", interval=0.1)
    finally:
        server.terminate()
        server.wait(10)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(entry["logger"] == "gunicorn.error" for entry in entries)
    assert any(entry["message"].startswith(f"upload {created['id']}: pending") for entry in entries)
