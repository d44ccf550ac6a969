"""Both designs side by side, on one imgpipe bench stack and the old service on its MinIO, with
the same pictures on the same machine in the same minutes.

- Upload to completed, idle: single uploads (1 MP, then fewer at 12 MP) one at a time, the two
  designs taking turns, from
  the moment the client starts its first request (imgpipe: POST /uploads, then the PUT to
  MinIO; the old service: the form post carrying the bytes) to the moment the row turns
  completed (imgpipe's updated_at, the old row's completed_at, each written by the UPDATE that
  completes it). Both clients also poll the status, as a client would.
- Burst: images/s over the same pictures on two workers each (imgpipe's `imgpipe worker` × 2,
  the old Celery worker with two prefork processes), in the order imgpipe, old, old, imgpipe so
  that a drift in the machine's background load weighs on both alike. imgpipe's burst is
  bench.pipeline.burst, whose clock starts at the first PUT, after its POST /uploads calls; so
  each burst is also timed whole, from the call to its return, creations and the last poll
  included, and the ratio is given both ways.
- Derivation alone: CPU ms per picture of imgpipe's make_derivatives and of the old worker's
  three decodes, in this process, taking turns, on the burst's pictures: how much of the
  workers' difference is the derivation and how much the work around it. Of the old worker's
  rest, the task's own I/O (its row, the GET and three PUTs) is timed here too, with the
  derivatives made beforehand; the rest is Celery's (its consumer, pool and logging) and what
  working among other processes adds.
"""

from __future__ import annotations

import io
import statistics
import time
from datetime import datetime, timezone

import requests

from bench import pipeline, processing
from bench.old_design import records
from bench.old_design.derivatives import old_derivatives
from bench.old_design.job import process_upload
from bench.old_design.service import OldService, start_old_service
from bench.report import cpu_busy_fraction
from bench.stacks import use_worker_variant
from cli.stack import Stack
from imgpipe.uploads import connect, parse_timestamp

BURST_POLL_SECONDS = 0.1  # as bench.pipeline.burst polls


class OldClient:
    """What a client of the old service did: post the file as a form, poll the status."""

    def __init__(self, api_url: str):
        self.api_url = api_url
        self.session = requests.Session()

    def upload(self, data: bytes) -> str:
        response = self.session.post(f"{self.api_url}/upload/", files={"file": ("photo.jpg", data, "image/jpeg")},
                                     timeout=30)
        response.raise_for_status()
        return response.json()["id"]

    def wait_final(self, upload_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.session.get(f"{self.api_url}/upload/{upload_id}/status", timeout=10)
            response.raise_for_status()
            status = response.json()
            if status["status"] in records.FINAL:
                return status
            time.sleep(pipeline.POLL_SECONDS)
        raise RuntimeError(f"old design: upload {upload_id} did not finish within {timeout} s")


def imgpipe_single(client: pipeline.Client, db, data: bytes) -> dict[str, float]:
    began = time.time()
    upload = client.create(len(data))
    client.put(upload, data)
    sent = time.time()
    status = client.wait_final(upload["id"])
    seen = time.time()
    if status["status"] != "completed":
        raise RuntimeError(f"imgpipe: upload {upload['id']} ended {status}")
    completed = pipeline.epoch(parse_timestamp(pipeline.row_timestamps(db, [upload["id"]])[upload["id"]]["updated_at"]))
    return _marks(began, sent, seen, completed)


def old_single(client: OldClient, db, data: bytes) -> dict[str, float]:
    began = time.time()
    upload_id = client.upload(data)
    sent = time.time()
    status = client.wait_final(upload_id)
    seen = time.time()
    if status["status"] != "completed":
        raise RuntimeError(f"old design: upload {upload_id} ended {status}")
    return _marks(began, sent, seen, records.find(db, upload_id)["completed_at"])


def _marks(began: float, sent: float, seen: float, completed: float) -> dict[str, float]:
    return {"upload_to_completed": (completed - began) * 1000, "upload_requests": (sent - began) * 1000,
            "observed_by_polling": (seen - began) * 1000}


def idle_latency(stack: Stack, old: OldService, data: bytes, uploads: int, warmups: int = 2) -> dict[str, dict]:
    """Single uploads on both idle designs, taking turns, IDLE_GAP_SECONDS after each."""
    imgpipe_client, old_client = pipeline.Client(stack.api_url, stack.settings.api_token), OldClient(old.api_url)
    imgpipe_db, old_db = connect(stack.settings.database), records.connect(old.config.database_path)
    samples: dict[str, list[dict]] = {"imgpipe": [], "old": []}
    try:
        for index in range(warmups + uploads):
            for design, one in (("imgpipe", lambda: imgpipe_single(imgpipe_client, imgpipe_db, data)),
                                ("old", lambda: old_single(old_client, old_db, data))):
                marks = one()
                if index >= warmups:
                    samples[design].append(marks)
                time.sleep(pipeline.IDLE_GAP_SECONDS)
    finally:
        imgpipe_db.close()
        old_db.close()
    return {design: _latency_summary(marks) for design, marks in samples.items()}


def _latency_summary(samples: list[dict]) -> dict:
    total = [sample["upload_to_completed"] for sample in samples]
    return {"uploads": len(samples),
            "p50_ms": round(pipeline.percentile(total, 0.50), 1),
            "p95_ms": round(pipeline.percentile(total, 0.95), 1),
            "upload_requests_p50_ms": round(statistics.median(s["upload_requests"] for s in samples), 1),
            "observed_by_polling_p50_ms": round(statistics.median(s["observed_by_polling"] for s in samples), 1)}


def old_burst(stack: Stack, old: OldService, images: list[bytes], timeout: float = 300.0) -> dict:
    """Every picture posted back to back by one client, as bench.pipeline.burst PUTs them;
    throughput is the uploads over the time from the first post's start to the last row's
    completion. CPU per image by process: the old service's own, MinIO's and this client's."""
    client, db = OldClient(old.api_url), records.connect(old.config.database_path)
    minio_pid = stack.processes["minio"].pid

    def cpu_seconds() -> dict[str, float]:
        return {**pipeline.stack_cpu_seconds(old.stack), "minio": pipeline.session_cpu_seconds(minio_pid)}

    cpu_before = cpu_seconds()
    began = time.time()
    ids = [client.upload(data) for data in images]
    posts_done = time.time()
    deadline = time.monotonic() + timeout
    while len(final := records.final_rows(db, ids)) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"old design burst: only {len(final)} of {len(ids)} finished within {timeout} s")
        time.sleep(BURST_POLL_SECONDS)
    cpu_after = cpu_seconds()
    db.close()
    failed = [dict(row) for row in final.values() if row["status"] != "completed"]
    if failed:
        raise RuntimeError(f"old design burst: {len(failed)} uploads failed, e.g. {failed[0]}")
    last = max(row["completed_at"] for row in final.values())
    return {"uploads": len(ids), "seconds": round(last - began, 2), "put_seconds": round(posts_done - began, 2),
            "images_per_s": round(len(ids) / (last - began), 2),
            "cpu_ms_per_image": {kind: round((cpu_after[kind] - cpu_before.get(kind, 0.0)) * 1000 / len(ids), 1)
                                 for kind in cpu_after}}


def _timed_whole(burst, *args) -> dict:
    began = time.time()
    result = burst(*args)
    return {**result, "whole_call_images_per_s": round(result["uploads"] / (time.time() - began), 2)}


def _combined(runs: list[dict]) -> dict:
    """Two bursts of one design as one figure: images/s over both (the harmonic mean, the runs
    being of the same count), CPU per image averaged."""
    def rate(key: str) -> float:
        return round(len(runs) / sum(1 / run[key] for run in runs), 2)

    kinds = dict.fromkeys(kind for run in runs for kind in run["cpu_ms_per_image"])
    cpu = {kind: round(statistics.mean(run["cpu_ms_per_image"].get(kind, 0.0) for run in runs), 1) for kind in kinds}
    return {"images_per_s": rate("images_per_s"), "whole_call_images_per_s": rate("whole_call_images_per_s"),
            "cpu_ms_per_image": cpu, "cpu_ms_per_image_total": round(sum(cpu.values()), 1), "runs": runs}


def derivation_cpu_ms(pictures: list[bytes], rounds: int) -> dict[str, float]:
    """Median over rounds of CPU ms per picture (every thread of this process), after a checked
    warm-up call of each."""
    implementations = {"imgpipe": processing.ours, "old": old_derivatives}
    for name, derive in implementations.items():
        processing.check_outputs(name, pictures[0], derive(pictures[0]))
    samples: dict[str, list[float]] = {name: [] for name in implementations}
    for _ in range(rounds):
        for name, derive in implementations.items():
            began = time.process_time()
            for picture in pictures:
                derive(picture)
            samples[name].append((time.process_time() - began) * 1000 / len(pictures))
    return {name: round(statistics.median(values), 1) for name, values in samples.items()}


def old_task_io_cpu_ms(old: OldService, picture: bytes, rounds: int) -> float:
    """Median CPU ms, in this process, of the old task's work on one upload but the derivation."""
    store, bucket = old.config.store(), old.config.s3_bucket_name
    key = "originals/task-io-probe.jpg"
    store.put_object(bucket, key, io.BytesIO(picture), len(picture), content_type="image/jpeg")
    made = old_derivatives(picture)
    database = records.connect(old.config.database_path)
    samples = []
    try:
        for index in range(rounds + 1):  # the first warms the connections up
            upload_id = f"task-io-probe-{index}"
            records.insert(database, upload_id, "probe.jpg", "image/jpeg", len(picture))
            began = time.process_time()
            process_upload(old.config, store, upload_id, key, derive=lambda _original: made)
            if index:
                samples.append((time.process_time() - began) * 1000)
    finally:
        database.close()
    return round(statistics.median(samples), 1)


def side_by_side(stack: Stack, single: bytes, large: bytes, images: list[bytes], uploads: int, workers: int,
                 mode: str, say=print) -> dict:
    """imgpipe's shipped workers on `stack` against the old service started on its MinIO: `single`
    (1 MP) and, a quarter as many times, `large` (12 MP) uploaded one at a time, then bursts of
    `images`."""
    background_before = cpu_busy_fraction(1.0)
    distinct = list(dict.fromkeys(images))
    say(f"old design: derivation alone, {len(distinct)} pictures, {max(2, uploads // 2)} rounds")
    derivation = derivation_cpu_ms(distinct, max(2, uploads // 2))
    say(f"  CPU ms per picture {derivation}")
    use_worker_variant(stack, "shipped", workers)
    pipeline.wait_for_workers(stack, workers)
    say(f"old design: starting its Redis, web app and Celery worker ({workers} prefork processes)")
    old = start_old_service(stack, workers)
    try:
        task_io = old_task_io_cpu_ms(old, single, max(5, uploads))
        say(f"old design: its task's row and store requests alone, {task_io} CPU ms per upload")
        pipeline.burst(stack, images[:2 * workers])
        old_burst(stack, old, images[:2 * workers])
        say(f"old design: {uploads} single uploads on each design, taking turns")
        idle = idle_latency(stack, old, single, uploads)
        for design, row in idle.items():
            say(f"  {design}: upload to completed p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms")
        large_uploads = max(3, uploads // 4)
        say(f"old design: {large_uploads} single 12 MP uploads on each design, taking turns")
        idle_large = idle_latency(stack, old, large, large_uploads, warmups=1)
        for design, row in idle_large.items():
            say(f"  {design}: upload to completed p50 {row['p50_ms']} ms")
        say(f"old design: bursts of {len(images)}, imgpipe, old, old, imgpipe")
        runs: dict[str, list[dict]] = {"imgpipe": [], "old": []}
        for design in ("imgpipe", "old", "old", "imgpipe"):
            if design == "imgpipe":
                run = _timed_whole(pipeline.burst, stack, images)
            else:
                run = _timed_whole(old_burst, stack, old, images)
            say(f"  {design}: {run['images_per_s']} images/s ({run['whole_call_images_per_s']} timed whole),"
                f" CPU ms per image {run['cpu_ms_per_image']}")
            runs[design].append(run)
    finally:
        old.stop()
    bursts = {design: _combined(design_runs) for design, design_runs in runs.items()}
    return {
        **{design: {"idle": idle[design], "idle_12mp": idle_large[design], "burst": bursts[design],
                    "derivation_cpu_ms": derivation[design],
                    "worker_cpu_ms_beyond_derivation": round(bursts[design]["cpu_ms_per_image"]["worker"]
                                                             - derivation[design], 1)}
           for design in ("imgpipe", "old")},
        "old_task_io_cpu_ms": task_io,
        "old_worker_rest_cpu_ms": round(bursts["old"]["cpu_ms_per_image"]["worker"] - derivation["old"] - task_io, 1),
        "p50_ratio": round(idle["old"]["p50_ms"] / idle["imgpipe"]["p50_ms"], 2),
        "p50_ratio_12mp": round(idle_large["old"]["p50_ms"] / idle_large["imgpipe"]["p50_ms"], 2),
        "burst_ratio": round(bursts["imgpipe"]["images_per_s"] / bursts["old"]["images_per_s"], 2),
        "whole_call_burst_ratio": round(bursts["imgpipe"]["whole_call_images_per_s"]
                                        / bursts["old"]["whole_call_images_per_s"], 2),
        "cpu_ratio": round(bursts["old"]["cpu_ms_per_image_total"] / bursts["imgpipe"]["cpu_ms_per_image_total"], 2),
        "uploads": uploads,
        "uploads_12mp": large_uploads,
        "burst_uploads": len(images),
        "workers": workers,
        "mode": mode,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "background_cpu_busy": {"before": background_before, "after": cpu_busy_fraction(1.0)},
    }
