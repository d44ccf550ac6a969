"""MinIO stopped: the API says so with 503 JSON instead of failing or hanging; jobs that could
not reach it wait; once it is back the pipeline drains."""

from __future__ import annotations

import contextlib

from rq.exceptions import NoSuchJobError
from rq.job import JobStatus

from imgpipe import uploads
from imgpipe.queues import fetch_job, make_queue
from imgpipe.redis_connection import redis_client
from pipeline_client import Api, make_jpegs, upload_all
from polling import eventually
from processor.jobs import job_id_for


def wait_for_status(api: Api, path: str, status: int, timeout: float = 10.0, **kwargs):
    """The first answer of `path` with that status (a Response is false when it is an error, so
    the answers are kept aside)."""
    answers = []

    def answered() -> bool:
        answers.append(api.post(path, **kwargs) if kwargs else api.get(path))
        return answers[-1].status_code == status

    eventually(answered, timeout, lambda: f"{path} to answer {status} (last: {answers[-1].status_code})", interval=0.1)
    return answers[-1]


def uploads_that_met_the_outage(stack, upload_ids: list[str], timeout: float = 30.0) -> set[str]:
    """Wait until every upload not yet completed has had its job run against the missing store
    and put back for a retry (RQ's scheduled state); returns those uploads."""
    connection = redis_client(stack.settings, "cli")
    database = uploads.connect(stack.settings.database)
    retried: set[str] = set()
    unfinished: set[str] = set(upload_ids)

    def every_unfinished_one_retried() -> bool:
        unfinished.intersection_update(upload_id for upload_id in upload_ids
                                       if uploads.get_upload(database, upload_id)["status"] != uploads.COMPLETED)
        for upload_id in unfinished - retried:
            with contextlib.suppress(NoSuchJobError):
                if fetch_job(connection, job_id_for(upload_id)).get_status() == JobStatus.SCHEDULED:
                    retried.add(upload_id)
        return unfinished <= retried

    eventually(every_unfinished_one_retried, timeout,
               lambda: f"uploads {sorted(unfinished - retried)} to be retried while MinIO is down", interval=0.1)
    return retried


def test_a_minio_outage_is_reported_and_drained(stack_with, tmp_path):
    stack = stack_with(processing_deadline=5)
    api = Api.of(stack)
    stack.stop_process("worker")  # so every job meets the outage
    created = upload_all(api, make_jpegs(tmp_path / "in", 10, size=(1600, 1200)))
    queue = make_queue(redis_client(stack.settings, "cli"), stack.settings)
    eventually(lambda: queue.count >= 10, 10, "every upload's event to become a job")
    assert queue.count == 10, "every upload's event became a job"
    stack.stop_process("minio")
    stack.start_worker()

    refused = wait_for_status(api, "/uploads", 503, json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 9})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "storage_unavailable"
    health = api.get("/healthz")
    assert health.status_code == 503 and health.json()["down"] == ["storage"]
    assert len(uploads_that_met_the_outage(stack, [upload["id"] for upload in created])) == 10
    statuses = [api.get(f"/uploads/{u['id']}/status").json()["status"] for u in created]
    assert "failed" not in statuses

    stack.start_minio()
    finals = [api.wait_final(upload["id"], timeout=60) for upload in created]
    assert [final["status"] for final in finals] == ["completed"] * 10
    assert wait_for_status(api, "/healthz", 200).status_code == 200
    assert api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 9}).status_code == 201
