"""Two durability choices of the local stack, measured side by side.

- MINIO_API_SYNC_EVENTS: MinIO pushes an upload's event to Redis before it answers the PUT,
  instead of just after. Cost: PUT latency. Gain: no acknowledged upload whose event is still
  only in MinIO's memory.
- Redis' append-only file (fsync every second): queued jobs, events not yet relayed and
  scheduled webhook retries are on disk. Cost: the time to enqueue a job. Gain: they survive
  Redis dying.

Each variant is its own Redis and MinIO on free ports, with data on the project's disk (not
a tmpfs, which would make fsync free). What survives is counted after SIGKILLing Redis and
MinIO together right after the last write was answered, then starting both again on the same
data. A SIGKILL leaves what a process wrote in the kernel's page cache, so it is the power
loss of the processes, not of the machine: on a machine losing power, appendfsync everysec
may lose up to the last second of writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from imgpipe.keys import new_upload_id, original_key
from imgpipe.settings import Settings
from cli.stack import PROJECT_ROOT, Stack, free_port
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from imgpipe.queues import make_queue
from imgpipe.redis_connection import redis_client
from processor.jobs import enqueue_processing


def start_services(*, sync_events: bool, appendonly: bool) -> Stack:
    """Redis and MinIO (with the bucket and its notification) only: no API, relay or worker,
    so events and jobs stay where they land and can be counted."""
    work = PROJECT_ROOT / "bench" / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="durability-", dir=work))
    settings = Settings(s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
                        redis_url=f"redis://127.0.0.1:{free_port()}/0", database_path=str(var_dir / "unused.db"))
    stack = Stack(settings, var_dir, api_port=free_port(), redis_appendonly=appendonly, minio_sync_events=sync_events)
    stack.start_redis()
    stack.start_minio()
    stack.apply_config()
    return stack


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "mean_ms": round(statistics.fmean(ordered), 2), "n": len(ordered)}


def in_turn(variants: dict, request, count: int) -> dict[str, dict]:
    """request(variant) timed `count` times for each variant, one variant after the other, so
    the machine's background load falls on all of them alike (the first round is not
    counted). Besides each one's percentiles, extra_p50_ms is the median of its differences
    with the first variant, request by request: the cost of the variant, with most of the
    background's noise taken out."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(count + 1):
        for name, variant in variants.items():
            began = time.perf_counter()
            request(variant)
            samples[name].append((time.perf_counter() - began) * 1000)
    baseline = samples[next(iter(variants))][1:]
    return {name: {**percentiles(values[1:]),
                   "extra_p50_ms": round(statistics.median(v - b for v, b in zip(values[1:], baseline)), 3)}
            for name, values in samples.items()}


def put_latency(stacks: dict[str, Stack], data: bytes, count: int) -> dict[str, dict]:
    """Sequential PUTs of `data` under originals/, each raising an event."""
    storages = {name: Storage(stack.settings, ROOT) for name, stack in stacks.items()}
    result = in_turn(storages, lambda storage: storage.write(original_key(new_upload_id(), "jpg"), data, "image/jpeg"),
                     count)
    for stack in stacks.values():
        redis_client(stack.settings, "cli").delete(stack.settings.events_key)
    return result


def put_latency_with_redis_down(stack: Stack, image: bytes, count: int) -> dict:
    """With synchronous events, a PUT waits for Redis: what it costs while Redis is down."""
    stack.stop_process("redis")
    storage = Storage(stack.settings, ROOT)
    samples = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            storage.write(original_key(new_upload_id(), "jpg"), image, "image/jpeg")
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        stack.start_redis()
    return percentiles(samples)


def enqueue_latency(stacks: dict[str, Stack], count: int) -> dict[str, dict]:
    """enqueue_processing, as the relay calls it for each event."""
    queues = {name: make_queue(redis_client(stack.settings, "cli"), stack.settings)
              for name, stack in stacks.items()}
    result = in_turn(queues, lambda queue: enqueue_processing(queue, new_upload_id()), count)
    for queue in queues.values():
        queue.empty()
    return result


def kill_and_restart(stack: Stack) -> None:
    """SIGKILL Redis and MinIO at once, then start both again on the same data and ports."""
    processes = [stack.processes.pop("redis"), stack.processes.pop("minio")]
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()
    stack.start_redis()
    stack.start_minio()


def count_originals(stack: Stack) -> int:
    listing = Storage(stack.settings, ROOT).client.list_objects(stack.settings.s3_bucket_name, prefix="originals/",
                                                          recursive=True)
    return sum(1 for _ in listing)


def survivors(stack: Stack, image: bytes, uploads: int, threads: int = 8) -> dict:
    """PUT `uploads` originals (several at a time) and enqueue a job after each, as the relay
    would; SIGKILL Redis and MinIO the moment the last is answered; count what is left."""
    storage = Storage(stack.settings, ROOT)
    queue = make_queue(redis_client(stack.settings, "cli"), stack.settings)
    originals_before = count_originals(stack)

    def upload(_):
        upload_id = new_upload_id()
        storage.write(original_key(upload_id, "jpg"), image, "image/jpeg")
        enqueue_processing(queue, upload_id)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(upload, range(uploads)))
    kill_and_restart(stack)
    connection = redis_client(stack.settings, "cli")
    kept = {"events": connection.llen(stack.settings.events_key),
            "jobs": make_queue(connection, stack.settings).count,
            "originals": count_originals(stack) - originals_before,
            "uploads": uploads}
    connection.delete(stack.settings.events_key)
    make_queue(connection, stack.settings).empty()
    return kept


VARIANTS = {
    "as before: no sync events, no AOF": {"sync_events": False, "appendonly": False},
    "sync events only": {"sync_events": True, "appendonly": False},
    "AOF (everysec) only": {"sync_events": False, "appendonly": True},
    "sync events + AOF (everysec)": {"sync_events": True, "appendonly": True},
}


def measure(image: bytes, *, puts: int, enqueues: int, kill_trials: int, kill_uploads: int, say=print) -> dict:
    stacks: dict[str, Stack] = {}
    try:
        for name, options in VARIANTS.items():
            stacks[name] = start_services(**options)
        say(f"durability: PUT latency, {puts} PUTs of {len(image)} bytes and of 1 KiB per variant, in turn")
        put = put_latency(stacks, image, puts)
        put_small = put_latency(stacks, bytes(1024), puts)
        say(f"durability: enqueue latency, {enqueues} jobs per variant, in turn")
        enqueue = enqueue_latency(stacks, enqueues)
        say("durability: PUT latency with sync events while Redis is down")
        redis_down = put_latency_with_redis_down(stacks["sync events only"], image, min(puts, 50))
        kept: dict[str, list[dict]] = {name: [] for name in stacks}
        for trial in range(kill_trials):
            for name, stack in stacks.items():
                say(f"durability: {kill_uploads} uploads then SIGKILL, {name} (trial {trial + 1}/{kill_trials})")
                kept[name].append(survivors(stack, image, kill_uploads))
    finally:
        for stack in stacks.values():
            stack.stop()
            shutil.rmtree(stack.var_dir, ignore_errors=True)
    return {
        "image_bytes": len(image),
        "variants": {name: {**VARIANTS[name], "put": put[name], "put_1kib": put_small[name],
                            "enqueue": enqueue[name], "after_sigkill": kept[name]} for name in stacks},
        "sync_events_put_with_redis_down": redis_down,
    }
