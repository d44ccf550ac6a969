"""IMGPIPE_API_TOKEN: when set, every call but /healthz needs it."""

from __future__ import annotations

import dataclasses

import pytest

from api import create_app

TOKEN = "correct horse battery staple"


@pytest.fixture
def client(stack):
    app = create_app(dataclasses.replace(stack.settings, api_token=TOKEN))
    return app.test_client()


NEW_UPLOAD = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}


def test_calls_without_the_token_are_401_json(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = client.post("/uploads", json=NEW_UPLOAD, headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json()["error"]["code"] == "unauthorized"
    for path in ("/uploads/" + "0" * 32, "/uploads/" + "0" * 32 + "/status", "/uploads", "/metrics", "/rq/", "/"):
        assert client.get(path).status_code == 401, path
    assert client.delete("/uploads/" + "0" * 32).status_code == 401


def test_the_token_opens_every_call(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    created = client.post("/uploads", json=NEW_UPLOAD, headers=headers)
    assert created.status_code == 201
    upload_id = created.get_json()["id"]
    assert client.get(f"/uploads/{upload_id}/status", headers=headers).get_json()["status"] == "pending"
    assert client.get("/metrics", headers=headers).status_code == 200
    assert upload_id in [upload["id"] for upload in client.get("/uploads", headers=headers).get_json()["uploads"]]
    assert client.delete(f"/uploads/{upload_id}", headers=headers).get_json()["status"] == "deleted"


def test_healthz_stays_open(client):
    assert client.get("/healthz").status_code == 200
