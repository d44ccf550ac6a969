"""Redis as a trusted boundary, tried as an outsider would against a real stack: without the
password Redis answers nothing, and someone who can write to Redis anyway still cannot make a
worker, or the API's dashboard, run code of theirs."""

from __future__ import annotations

import os
import pickle
import secrets
import socket
from pathlib import Path

import pytest
import requests
from rq import Callback, Queue
from rq.job import Job, JobStatus

from imgpipe.queues import SERIALIZER, fetch_job, make_queue, relayed_count_key
from imgpipe.redis_connection import redis_client
from pipeline_client import make_jpegs, put_file
from polling import eventually
from processor.jobs import PROCESS_UPLOAD, job_id_for
from stacks import free_port, running_stack


class RunsCommand:
    """An argument that, once unpickled, has run `command`: what an attacker would enqueue."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("redis-boundary")) as running:
        yield running


@pytest.fixture
def redis(stack):
    return redis_client(stack.settings, "cli")


def bearer(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.settings.api_token}"}


def redis_says(stack, *commands: bytes) -> list[bytes]:
    """Redis' first reply line to each inline command, sent on one raw connection as an outsider would."""
    replies = []
    with socket.create_connection(("127.0.0.1", int(stack.settings.redis_address.rsplit(":", 1)[1])), timeout=5) as sock:
        reader = sock.makefile("rb")
        for command in commands:
            sock.sendall(command + b"\r\n")
            replies.append(reader.readline().rstrip(b"\r\n"))
    return replies


def final_status(stack, upload_id: str) -> dict | None:
    answer = requests.get(f"{stack.api_url}/uploads/{upload_id}/status", headers=bearer(stack), timeout=10).json()
    return answer if answer["status"] in ("completed", "failed") else None


def worker_log(stack) -> str:
    return stack.path("log", "worker.log").read_text(errors="replace")


def failed(redis, job_id: str) -> bool:
    return fetch_job(redis, job_id).get_status() == JobStatus.FAILED


def assert_refused(stack, redis, job_id: str, marker, reason: str) -> None:
    """The worker failed the job without running anything of it, logged so, and said why."""
    eventually(lambda: failed(redis, job_id), 20, "the worker to fail the job")
    assert not marker.exists()
    assert f"refused job {job_id}" in worker_log(stack)
    assert reason in fetch_job(redis, job_id).latest_result().exc_string


def test_redis_refuses_clients_without_the_password(stack):
    password = stack.settings.redis_password
    assert len(password) >= 32
    no_auth, wrong = redis_says(stack, b"PING"), redis_says(stack, b"AUTH not-the-password", b"PING")
    assert no_auth[0].startswith(b"-NOAUTH")
    assert wrong[0].startswith(b"-WRONGPASS") and wrong[1].startswith(b"-NOAUTH")
    assert redis_says(stack, f"AUTH {password}".encode(), b"PING") == [b"+OK", b"+PONG"]
    # The password is not on Redis' command line, which every local user can read.
    command_line = Path(f"/proc/{stack.processes['redis'].pid}/cmdline").read_bytes()
    assert password.encode() not in command_line


def test_events_reach_redis_and_an_upload_completes_with_the_password_on(stack, redis, tmp_path):
    upload_completes_through_its_event(stack, redis, tmp_path)


def upload_completes_through_its_event(stack, redis, tmp_path) -> None:
    relayed_before = int(redis.get(relayed_count_key(stack.settings)) or 0)
    path = make_jpegs(tmp_path, 1)[0]
    created = requests.post(f"{stack.api_url}/uploads", headers=bearer(stack), timeout=10, json={
        "filename": path.name, "content_type": "image/jpeg", "size": path.stat().st_size}).json()
    put_file(created["upload"], path)
    status = eventually(lambda: final_status(stack, created["id"]), 30, "the upload to end")
    assert status["status"] == "completed", status
    # MinIO's event came through Redis (the relay counted it), not only the sweeper.
    assert int(redis.get(relayed_count_key(stack.settings)) or 0) > relayed_before


@pytest.mark.parametrize("function", ["os.system", "subprocess.getoutput", "processor.tasks.os.system"])
def test_a_job_naming_another_function_is_failed_and_never_run(stack, redis, tmp_path, function):
    marker = tmp_path / "ran"
    job = make_queue(redis, stack.settings).enqueue_call(function, args=(f"touch {marker}",))
    assert_refused(stack, redis, job.id, marker, "not one of imgpipe's job functions")


def test_a_job_asking_for_a_callback_is_failed_and_the_callback_never_run(stack, redis, tmp_path):
    """An imgpipe job function, but with a failure callback an attacker chose."""
    marker = tmp_path / "ran"
    job = make_queue(redis, stack.settings).enqueue_call(
        PROCESS_UPLOAD, args=(f"$(touch {marker})",), on_failure=Callback("os.system"))
    assert_refused(stack, redis, job.id, marker, "asks for callbacks")


def test_a_pickled_job_is_not_unpickled(stack, redis, tmp_path):
    """A job function the worker would run, with an argument that runs a command when unpickled."""
    marker = tmp_path / "ran"
    pickled = Queue(stack.settings.queue_name, connection=redis)  # RQ's default serializer: pickle
    job = pickled.enqueue_call(PROCESS_UPLOAD, args=(RunsCommand(f"touch {marker}"),))
    eventually(lambda: failed(redis, job.id), 20, "the worker to fail the job")
    assert not marker.exists()
    assert "payload is not JSON" in worker_log(stack)


def test_an_upload_whose_job_an_older_version_pickled_still_completes(stack, redis, tmp_path):
    """After an upgrade, a pickled job still queued for a real upload is failed; the sweeper
    then drives the upload again with a job of the new kind."""
    path = make_jpegs(tmp_path, 1)[0]
    created = requests.post(f"{stack.api_url}/uploads", headers=bearer(stack), timeout=10, json={
        "filename": path.name, "content_type": "image/jpeg", "size": path.stat().st_size}).json()
    upload_id = created["id"]
    Queue(stack.settings.queue_name, connection=redis).enqueue_call(PROCESS_UPLOAD, args=(upload_id,),
                                                                    job_id=job_id_for(upload_id))
    put_file(created["upload"], path)
    assert eventually(lambda: final_status(stack, upload_id), 40, "the upload to end")["status"] == "completed"
    assert f"refused job {job_id_for(upload_id)}" in worker_log(stack)


def test_the_dashboard_lists_jobs_and_unpickles_nothing(stack, redis, tmp_path):
    marker = tmp_path / "ran"
    refused = make_queue(redis, stack.settings).enqueue_call("os.system", args=(f"touch {marker}",))
    eventually(lambda: failed(redis, refused.id), 20, "the worker to fail the job")
    # A job on no queue whose meta is a pickle that runs a command: the job page reads it.
    trap = Job.create("os.getcwd", connection=redis, serializer=SERIALIZER, id="trap")
    trap.save()
    redis.hset(trap.key, "meta", pickle.dumps(RunsCommand(f"touch {marker}")))
    try:
        base = f"{stack.api_url}/rq/0"
        jobs = requests.get(f"{base}/data/jobs/{stack.settings.queue_name}/failed/100/asc/1.json", headers=bearer(stack),
                            timeout=10)
        assert jobs.status_code == 200
        assert refused.id in [job["id"] for job in jobs.json()["jobs"]]
        job = requests.get(f"{base}/data/job/{refused.id}.json", headers=bearer(stack), timeout=10).json()
        assert (job["status"], job["description"]) == ("failed", f"os.system('touch {marker}')")
        for path in (f"/view/job/{refused.id}", "/view/job/trap", "/data/workers.json", "/data/queues.json"):
            assert requests.get(base + path, headers=bearer(stack), timeout=10).status_code == 200, path
        requests.get(f"{base}/data/job/trap.json", headers=bearer(stack), timeout=10)
        assert not marker.exists()
    finally:
        trap.delete()


def test_with_an_acl_user_in_redis_url_every_process_and_minio_log_in_as_it(tmp_path_factory, tmp_path):
    password = secrets.token_hex(16)
    with running_stack(tmp_path_factory.mktemp("redis-acl"),
                       redis_url=f"redis://imgpipe:{password}@127.0.0.1:{free_port()}/0") as acl:
        assert redis_says(acl, b"PING")[0].startswith(b"-NOAUTH")
        assert redis_says(acl, f"AUTH {password}".encode())[0].startswith(b"-WRONGPASS")  # the default user is off
        assert redis_says(acl, f"AUTH imgpipe {password}".encode(), b"PING") == [b"+OK", b"+PONG"]
        upload_completes_through_its_event(acl, redis_client(acl.settings, "cli"), tmp_path)
