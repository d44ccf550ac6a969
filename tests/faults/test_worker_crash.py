"""Worker processes SIGKILLed mid-job: the job is re-driven a bounded number of times, none is
left in processing.

`imgpipe worker` supervises the process that runs the jobs; killing that process is what the
OOM killer or a crashing decoder does, killing the supervisor's whole group is a lost host."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from rq import Worker

from imgpipe import uploads
from imgpipe.queues import SERIALIZER, fetch_job, make_queue
from imgpipe.redis_connection import redis_client
from pipeline_client import Api, make_jpegs, put_file, upload_all
from polling import eventually
from processor.jobs import TAKEN_AND_LOST_AFTER, job_id_for
from stacks import children_of, process_tree
from webhook_receiver import webhook_receiver


def work_horse(worker_pid: int) -> int | None:
    """The process running the jobs: the supervisor's child that leads its own process group."""
    for child in children_of(worker_pid):
        try:
            if os.getpgid(child) == child:
                return child
        except ProcessLookupError:
            continue
    return None


def current_job_id(connection, pid: int) -> str | None:
    for worker in Worker.all(connection=connection, serializer=SERIALIZER):
        if worker.pid == pid:
            return worker.get_current_job_id()
    return None


def kill_claimed_jobs(stack, should_kill, done, timeout: float = 30) -> dict[str, int]:
    """Until done(), SIGKILL the job process whenever its job has claimed its row and
    should_kill(upload_id, kills_so_far) says so; returns the kills per upload."""
    connection = redis_client(stack.settings, "cli")
    database = uploads.connect(stack.settings.database)
    worker_pid = stack.processes["worker"].pid
    kills: dict[str, int] = {}

    def kill_one_if_due() -> bool:
        horse = work_horse(worker_pid)
        job_id = current_job_id(connection, horse) if horse else None
        if job_id and horse:
            upload_id = job_id.removeprefix("process-")
            row = uploads.get_upload(database, upload_id)
            killed = kills.get(upload_id, 0)
            if row and row["status"] == "processing" and row["attempts"] > killed and should_kill(upload_id, killed):
                os.kill(horse, signal.SIGKILL)
                kills[upload_id] = killed + 1
        return done(kills)

    eventually(kill_one_if_due, timeout, lambda: f"the kills to be done (so far {kills})", interval=0.002)
    return kills


@pytest.mark.engines("sqlite")  # the re-claims and attempt counts of the next test, which runs on both
def test_jobs_killed_once_each_are_retried_and_complete(stack_with, tmp_path):
    stack = stack_with()
    api = Api.of(stack)
    created = upload_all(api, make_jpegs(tmp_path / "in", 12, size=(2400, 1800)), threads=4)
    targets = {upload["id"] for upload in created[-6:]}  # the last ones are least likely done already

    database = uploads.connect(stack.settings.database)

    def all_final(_kills):
        return all(uploads.get_upload(database, u["id"])["status"] in ("completed", "failed") for u in created)

    kills = kill_claimed_jobs(stack, lambda upload_id, killed: upload_id in targets and killed == 0, all_final)
    finals = {upload["id"]: api.wait_final(upload["id"], timeout=60) for upload in created}

    assert len(kills) >= 3, f"too few jobs were caught mid-job to prove anything: {kills}"
    assert {final["status"] for final in finals.values()} == {"completed"}
    for upload_id in kills:
        assert uploads.get_upload(database, upload_id)["attempts"] == 2
    assert stack.processes["worker"].poll() is None


def test_a_job_killed_every_time_ends_failed_internal(stack_with, tmp_path):
    stack = stack_with(max_attempts=2)
    api = Api.of(stack)
    [created] = upload_all(api, make_jpegs(tmp_path / "in", 1, size=(3000, 2000)))

    kills = kill_claimed_jobs(stack, lambda upload_id, killed: killed < 2, lambda kills: sum(kills.values()) == 2)
    final = api.wait_final(created["id"], timeout=30)

    assert kills == {created["id"]: 2}
    assert final["status"] == "failed"
    assert final["error"]["code"] == "internal"
    assert "attempts" in final["error"]["message"]


def test_a_worker_killed_outright_leaves_nothing_in_processing(stack_with, tmp_path):
    """The supervisor and its worker process die together mid-job (a lost host): nothing is
    left to re-drive the job at once, and it stays marked started in RQ, so the relay's sweep (its
    stuck-processing step) re-drives the row once it is past the processing deadline."""
    stack = stack_with(processing_deadline=3)
    api = Api.of(stack)
    database = uploads.connect(stack.settings.database)
    created = upload_all(api, make_jpegs(tmp_path / "in", 6, size=(2400, 1800)))
    eventually(lambda: any(uploads.get_upload(database, u["id"])["status"] == "processing" for u in created), 20,
               "a job to claim its row", interval=0.002)
    os.killpg(stack.processes["worker"].pid, signal.SIGKILL)
    stack.processes["worker"].wait()
    caught = [u["id"] for u in created if uploads.get_upload(database, u["id"])["status"] == "processing"]

    stack.start_worker()
    finals = [api.wait_final(upload["id"], timeout=60) for upload in created]

    assert caught, "the worker was not caught mid-job"
    assert [final["status"] for final in finals] == ["completed"] * 6


@pytest.mark.engines("sqlite")  # the supervisor re-drives RQ's job; delivery rows: test_lost_webhook on both
def test_a_worker_killed_while_posting_a_webhook_still_delivers_it(stack_with, tmp_path):
    """The delivery job would stay marked started for good; the supervisor re-drives it."""
    stack = stack_with(webhook_allow_hosts="127.0.0.1", webhook_ports="*")
    api = Api.of(stack)
    [photo] = make_jpegs(tmp_path / "in", 1)
    worker_dead = threading.Event()

    def answer_once_the_worker_is_dead():
        worker_dead.wait(20)
        return 204

    with webhook_receiver(answers=[answer_once_the_worker_is_dead]) as receiver:
        created = api.create_for(photo, callback_url=f"{receiver.url}/hook")
        put_file(created["upload"], photo)
        receiver.wait_for(1)
        os.kill(work_horse(stack.processes["worker"].pid), signal.SIGKILL)
        worker_dead.set()
        requests_seen = receiver.wait_for(2, timeout=30)

    assert [request.path for request in requests_seen] == ["/hook", "/hook"]

    def settled_callback():
        callback = api.get(f"/uploads/{created['id']}").json()["callback"]
        return callback if callback["state"] != "pending" else None

    callback = eventually(settled_callback, 10, "the callback to leave pending")
    assert callback["state"] == "delivered"
    assert [attempt["http_status"] for attempt in callback["attempts"]] == [204]


@pytest.mark.engines("sqlite")  # on PostgreSQL a dead client's UPDATE that waits for a lock still runs once it is free
def test_a_worker_host_lost_between_taking_a_job_and_claiming_its_row(stack_with, tmp_path):
    """The worker's whole group dies after RQ marked the job started and before the job moved
    the row to processing, while another worker (as on another host) runs on. The row is still
    pending, and its job looks started: the relay replaces that job once it has been started
    for longer than the processing deadline, well before RQ would call it abandoned (its
    timeout plus a minute after it began)."""
    stack = stack_with(workers=2, processing_deadline=3)
    api = Api.of(stack)
    connection = redis_client(stack.settings, "cli")
    database = uploads.connect(stack.settings.database)
    [photo] = make_jpegs(tmp_path / "in", 1)
    created = api.create_for(photo)
    job_id = f"process-{created['id']}"
    with database.exclusive():  # the claim's UPDATE waits for this write lock
        database.execute("UPDATE uploads SET attempts = attempts WHERE id = ?", [created["id"]])
        put_file(created["upload"], photo)
        holder = eventually(lambda: next((worker for worker in Worker.all(connection=connection, serializer=SERIALIZER)
                                          if worker.get_current_job_id() == job_id), None),
                            20, "a worker taking the job", interval=0.01)
        [lost] = [process for process in stack.processes.values() if holder.pid in process_tree(process.pid)]
        for pid in process_tree(lost.pid):
            os.kill(pid, signal.SIGKILL)
        lost.wait()
    status_after_the_loss = uploads.get_upload(database, created["id"])["status"]
    job_status_after_the_loss = fetch_job(connection, job_id).get_status()

    final = api.wait_final(created["id"], timeout=30)

    assert (status_after_the_loss, job_status_after_the_loss) == ("pending", "started")
    assert final["status"] == "completed"
    assert uploads.get_upload(database, created["id"])["attempts"] == 1


def test_a_job_a_worker_took_off_the_queue_and_died_with_is_enqueued_again(stack_with, tmp_path):
    """A worker that listens on several queues pops a job id with LPOP and only then marks the job
    started: killed in between, the job stays `queued` in its own record but lies on no queue and
    in no registry. The relay's sweep must see that and enqueue it again."""
    stack = stack_with()
    stack.stop_process("worker")
    api = Api.of(stack)
    connection = redis_client(stack.settings, "cli")
    queue = make_queue(connection, stack.settings)
    [photo] = make_jpegs(tmp_path / "in", 1)
    created = api.create_for(photo)
    put_file(created["upload"], photo)
    job_id = job_id_for(created["id"])
    eventually(lambda: connection.lpos(queue.key, job_id) is not None, 10, "the upload's job to be queued")
    assert connection.lrem(queue.key, 1, job_id) == 1, "the job was queued; now a worker took it and died"
    assert fetch_job(connection, job_id).get_status() == "queued"

    stack.start_worker()
    final = api.wait_final(created["id"], timeout=TAKEN_AND_LOST_AFTER.total_seconds() + 30)
    assert final["status"] == "completed"
    assert uploads.get_upload(uploads.connect(stack.settings.database), created["id"])["attempts"] == 1
