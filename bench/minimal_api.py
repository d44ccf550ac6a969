"""The least a Flask app under gunicorn can cost for POST /uploads: it parses the same JSON
body and answers a 201 of the same shape and size, with no validation, presigning or
database. The benchmark serves it beside the real API, so the gap between the two is what
imgpipe's own work costs and the rest is Flask, gunicorn and wrk sharing two cores."""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)
FAKE_URL = "http://127.0.0.1:9000/uploads/originals/" + "0" * 32 + ".jpg?" + "X-Amz-Signature=" + "0" * 300


@app.post("/uploads")
def create_upload():
    body = request.get_json()
    return {
        "id": "0" * 32,
        "status": "pending",
        "key": "originals/" + "0" * 32 + ".jpg",
        "upload": {"method": "PUT", "url": FAKE_URL,
                   "headers": {"Content-Type": body["content_type"], "If-None-Match": "*",
                               "Content-Length": str(body["size"])},
                   "expires_at": "2026-01-01T00:15:00.000000Z"},
    }, 201


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
