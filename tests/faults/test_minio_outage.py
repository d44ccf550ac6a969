"""MinIO stopped: the API says so with 503 JSON instead of failing or hanging; jobs that could
not reach it wait; once it is back the pipeline drains."""

from __future__ import annotations

import time

from pipeline_client import Api, make_jpegs, upload_all


def wait_for_status(api: Api, path: str, status: int, timeout: float = 10.0, **kwargs):
    deadline = time.monotonic() + timeout
    while True:
        response = api.post(path, **kwargs) if kwargs else api.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_a_minio_outage_is_reported_and_drained(stack_with, tmp_path):
    stack = stack_with(processing_deadline=5)
    api = Api(stack.api_url)
    created = upload_all(api, make_jpegs(tmp_path / "in", 10, size=(1600, 1200)))
    stack.stop_process("minio")

    refused = wait_for_status(api, "/uploads", 503, json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 9})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "storage_unavailable"
    health = api.get("/healthz")
    assert health.status_code == 503 and health.json()["down"] == ["storage"]
    time.sleep(2)
    stuck = [api.get(f"/uploads/{u['id']}/status").json()["status"] for u in created]
    assert "failed" not in stuck

    stack.start_minio()
    finals = [api.wait_final(upload["id"], timeout=60) for upload in created]
    assert [final["status"] for final in finals] == ["completed"] * 10
    assert wait_for_status(api, "/healthz", 200).status_code == 200
    assert api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 9}).status_code == 201
