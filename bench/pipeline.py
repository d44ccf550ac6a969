"""End-to-end latency and burst throughput through the real stack: PUT to MinIO, MinIO's
event into Redis, the relay, RQ, a worker, the row marked completed.

Latency runs from the end of the PUT to the moment the row turns `completed`. That moment is
the row's `updated_at`, which the worker writes in the same UPDATE that makes the status read
`completed`: it is what a client polling infinitely often would see, so the figure does not
depend on how often the benchmark polls. The benchmark still polls GET /status (every
POLL_SECONDS) and reports when it saw the change, as a client would.

Each upload is also split into stages from timestamps the stack already keeps: the RQ job's
enqueued_at (MinIO's event reached the relay, which enqueued it) and started_at (a worker
took it: dequeue and, with a forking worker, the fork), and the row's processing_started_at
(the job claimed the row).
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from datetime import datetime

import requests
from rq import Worker

from cli.stack import Stack
from imgpipe.uploads import connect, parse_timestamp
from imgpipe.processes import process_stat
from imgpipe.queues import fetch_job, make_queue
from imgpipe.redis_connection import redis_client
from processor.jobs import job_id_for

POLL_SECONDS = 0.02
IDLE_GAP_SECONDS = 0.3


class Client:
    """What an uploader does: POST /uploads, PUT the bytes with the headers it was given,
    poll the status."""

    def __init__(self, api_url: str, token: str):
        self.api_url = api_url
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {token}"
        self.s3 = requests.Session()

    def create(self, size: int) -> dict:
        response = self.api.post(f"{self.api_url}/uploads", timeout=10,
                                 json={"filename": "photo.jpg", "content_type": "image/jpeg", "size": size})
        response.raise_for_status()
        return response.json()

    def put(self, upload: dict, data: bytes) -> None:
        response = self.s3.put(upload["upload"]["url"], data=data, headers=upload["upload"]["headers"], timeout=30)
        response.raise_for_status()

    def status(self, upload_id: str) -> dict:
        response = self.api.get(f"{self.api_url}/uploads/{upload_id}/status", timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_final(self, upload_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(upload_id)
            if status["status"] in ("completed", "failed"):
                return status
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"upload {upload_id} did not finish within {timeout} s")


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def row_timestamps(db, upload_ids: list[str]) -> dict[str, dict]:
    marks = ",".join("?" * len(upload_ids))
    rows = db.query(f"SELECT id, status, error_code, processing_started_at, updated_at FROM uploads"
                    f" WHERE id IN ({marks})", upload_ids)
    return {row["id"]: row for row in rows}


def stages_ms(put_end: float, job: Job | None, row: dict) -> dict[str, float]:
    completed = epoch(parse_timestamp(row["updated_at"]))
    claimed = epoch(parse_timestamp(row["processing_started_at"]))
    stages = {"e2e": completed - put_end, "claim_to_completed": completed - claimed}
    if job is not None and job.enqueued_at and job.started_at:
        stages["put_to_enqueued"] = epoch(job.enqueued_at) - put_end
        stages["enqueued_to_started"] = epoch(job.started_at) - epoch(job.enqueued_at)
        stages["started_to_claimed"] = claimed - epoch(job.started_at)
    return {name: value * 1000 for name, value in stages.items()}


def session_cpu_seconds(leader_pid: int) -> float:
    """CPU time (user + system) of every live process in the session the stack started the
    process in, with the children each has reaped (a forking RQ worker reaps its job
    processes; `imgpipe worker` runs its worker in a process group of its own)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = process_stat(int(entry))
        except OSError:
            continue
        if stat.session == leader_pid:
            total += stat.cpu_seconds_with_children
    return total


def stack_cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds so far per stack process (grouped by kind: every worker counts as `worker`),
    and this benchmark process itself as `client`."""
    usage: dict[str, float] = {}
    for name, process in stack.processes.items():
        kind = name.split("-")[0]
        usage[kind] = usage.get(kind, 0.0) + session_cpu_seconds(process.pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    usage["client"] = own.ru_utime + own.ru_stime
    return usage


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of all at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[rank - 1]


def wait_for_workers(stack: Stack, count: int, timeout: float = 30.0) -> None:
    connection = redis_client(stack.settings, "cli")
    queue = make_queue(connection, stack.settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(Worker.all(queue=queue)) == count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} workers did not register within {timeout} s")


def idle_latency(stack: Stack, data: bytes, uploads: int, warmups: int = 2) -> dict:
    """Single uploads one at a time, each on a stack with nothing else to do."""
    return latency_summary(*timed_single_uploads(stack, data, uploads, warmups))


def timed_single_uploads(stack: Stack, data: bytes, uploads: int, warmups: int = 2) -> tuple[list[dict], list[float]]:
    """`uploads` single uploads one at a time, IDLE_GAP_SECONDS apart, after `warmups` untimed
    ones: each one's stages (stages_ms), and when the poller saw it completed (ms after its PUT)."""
    client = Client(stack.api_url, stack.settings.api_token)
    connection = redis_client(stack.settings, "cli")
    db = connect(stack.settings.database)
    samples: list[dict[str, float]] = []
    observed: list[float] = []
    for index in range(warmups + uploads):
        upload = client.create(len(data))
        client.put(upload, data)
        put_end = time.time()
        status = client.wait_final(upload["id"])
        seen = time.time()
        if status["status"] != "completed":
            raise RuntimeError(f"upload {upload['id']} ended {status}")
        if index >= warmups:
            job = fetch_job(connection, job_id_for(upload["id"]))
            row = row_timestamps(db, [upload["id"]])[upload["id"]]
            samples.append(stages_ms(put_end, job, row))
            observed.append((seen - put_end) * 1000)
        time.sleep(IDLE_GAP_SECONDS)
    db.close()
    return samples, observed


def latency_summary(samples: list[dict], observed: list[float]) -> dict:
    e2e = [sample["e2e"] for sample in samples]
    stage_names = [name for name in samples[0] if name != "e2e"]
    return {
        "uploads": len(samples),
        "p50_ms": round(percentile(e2e, 0.50), 1),
        "p95_ms": round(percentile(e2e, 0.95), 1),
        "max_ms": round(max(e2e), 1),
        "observed_by_polling_p50_ms": round(percentile(observed, 0.50), 1),
        "stage_medians_ms": {name: round(statistics.median(sample[name] for sample in samples), 1)
                             for name in stage_names},
    }


def burst(stack: Stack, images: list[bytes], timeout: float = 300.0) -> dict:
    """Every upload created first, then all PUT back to back; throughput is the uploads over
    the time from the first PUT's start to the last row's completion."""
    client = Client(stack.api_url, stack.settings.api_token)
    db = connect(stack.settings.database)
    created = [client.create(len(data)) for data in images]
    ids = [upload["id"] for upload in created]
    cpu_before = stack_cpu_seconds(stack)
    began = time.time()
    for upload, data in zip(created, images):
        client.put(upload, data)
    puts_done = time.time()
    deadline = time.monotonic() + timeout
    while True:
        rows = row_timestamps(db, ids)
        final = [row for row in rows.values() if row["status"] in ("completed", "failed")]
        if len(final) == len(ids):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"burst: only {len(final)} of {len(ids)} finished within {timeout} s")
        time.sleep(0.1)
    cpu_after = stack_cpu_seconds(stack)
    db.close()
    failed = [row for row in final if row["status"] != "completed"]
    if failed:
        raise RuntimeError(f"burst: {len(failed)} uploads failed, e.g. {failed[0]}")
    last = max(epoch(parse_timestamp(row["updated_at"])) for row in final)
    return {
        "uploads": len(ids),
        "seconds": round(last - began, 2),
        "put_seconds": round(puts_done - began, 2),
        "images_per_s": round(len(ids) / (last - began), 2),
        "cpu_ms_per_image": {kind: round((cpu_after[kind] - cpu_before.get(kind, 0.0)) * 1000 / len(ids), 1)
                             for kind in cpu_after},
    }
