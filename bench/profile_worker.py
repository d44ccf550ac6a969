"""`python -m bench.profile_worker`: where a worker's time goes around the derivation, and what the
whole pipeline costs per 1 MP image against make_derivatives alone, side by side in one run.

Two parts, on one stack of imgpipe's own (free loopback ports, a temporary directory):

1. **The worker, profiled.** Uploads are PUT while no worker runs, so the relay queues them all;
   then one worker, run in burst mode under py-spy (sampling only threads on a CPU, every
   thread, nothing added to the worker's code), drains the queue. Each sample is charged to the
   part of the pipeline nearest its leaf (CATEGORIES), so a log line written while RQ records a
   job counts as logging, and a Redis call of RQ's as RQ. MinIO's own metrics count the
   requests each upload made of it, the client's PUT included.
2. **Side by side.** The stack's shipped workers (two `imgpipe worker`): idle end-to-end
   latency, then make_derivatives alone in two warm processes, a burst, make_derivatives alone
   again; the ratios issue 28 targets come from these, measured minutes apart on one machine.

Writes the collapsed stacks (flame-graph input) and a JSON summary into --out, and prints the
tables. py-spy needs to trace its child: it does as a normal user where ptrace is allowed for
one's own children (kernel.yama.ptrace_scope ≤ 1, the default).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import pipeline, processing
from bench.inputs import SIZES, photo_like_jpeg
from bench.minio_requests import request_counts
from bench.stacks import PROJECT_ROOT, remove_stack, start_stack
from imgpipe.queues import make_queue
from imgpipe.redis_connection import redis_client
from imgpipe.uploads import connect

DISTINCT_IMAGES = 4
SAMPLE_RATE = 500  # per second
# Where a sample's time goes, by the file of the frame nearest its leaf that names one: the
# first pattern (in this order) that matches that frame wins.
CATEGORIES = [
    ("logging", r"\blogging/"),
    ("derivation (make_derivatives)", r"processor/imaging[/.]|\bPIL/|\bpillow_heif/|processor/moderation\.py"),
    ("storage client (minio-py, urllib3)", r"\bminio/|\burllib3/|imgpipe/storage\.py|processor/originals\.py|"
                                           r"\bhttp/client\.py|\(ssl\.py|\(socket\.py"),
    ("row reads and UPDATEs", r"imgpipe/uploads\.py|imgpipe/engines\.py|\bsqlite_utils/|\bsqlite3/|\bpsycopg/"),
    ("RQ bookkeeping (rq, redis-py)", r"\brq/|\bredis/|imgpipe/queues\.py|processor/worker\.py|processor/jobs\.py"),
    ("job lifecycle (processor.tasks)", r"processor/tasks\.py|processor/resources\.py"),
]
OTHER = "other (interpreter, threads)"
# py-spy cannot tell here whether a thread blocked in a system call is idle (it samples them all
# alike), so a sample whose leaf is a blocking wait is counted apart as waiting, charged to the
# part that waits (a PUT's wait for MinIO's answer: storage), and the rest is CPU.
WAITING = re.compile(r"^(_worker \(concurrent/futures/thread\.py|Condition\.wait|Event\.wait|Thread\.join|"
                     r"SocketBuffer\._read_from_socket|SocketIO\.readinto|_wait_for_tstate_lock|sleep|"
                     r"BaseSelector|select|poll)")
# Threads that wait for work, not for a part of the pipeline: the writer threads, RQ's pub/sub listener.
IDLE_THREADS = re.compile(r"_worker \(concurrent/futures/thread\.py|PubSubWorkerThread\.run ")
START_UP = "start-up (imports, the moderator, registering)"


def images(count: int) -> list[bytes]:
    width, height = SIZES["1mp"]
    distinct = [photo_like_jpeg(width, height, seed=seed) for seed in range(2, 2 + DISTINCT_IMAGES)]
    return [distinct[index % len(distinct)] for index in range(count)]


def category(frames: list[str]) -> str:
    """The part of the pipeline a sample (its frames, root first) belongs to."""
    for frame in reversed(frames):
        for name, pattern in CATEGORIES:
            if re.search(pattern, frame):
                return name
    return OTHER


def breakdown(collapsed: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Samples per category from py-spy's raw (collapsed) output (`frame;frame;… count` lines):
    on a CPU, and waiting. The worker's start-up (anything of the main thread outside RQ's work
    loop) is a category of its own."""
    cpu: Counter = Counter()
    waiting: Counter = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        if WAITING.match(frames[-1]) and IDLE_THREADS.search(stack):
            continue
        main_thread = frames[0].startswith("_run_module_as_main")
        name = START_UP if main_thread and not any("BaseWorker.work " in frame for frame in frames) else category(frames)
        (waiting if WAITING.match(frames[-1]) else cpu)[name] += int(samples)
    return dict(cpu.most_common()), dict(waiting.most_common())


def drain(cpu_file: Path) -> None:
    """The profiled worker (run by py-spy): one worker in this process, in burst mode, as
    `imgpipe worker` runs its child; then its own CPU seconds, into `cpu_file`."""
    import processor.tasks  # noqa: F401  as `imgpipe worker` imports it before it forks
    from imgpipe.logs import configure_logging
    from imgpipe.settings import Settings
    from processor.worker import run_worker

    settings = Settings.from_env()
    configure_logging(settings)
    run_worker(settings, name=f"profiled.{os.getpid()}", burst=True)
    own = resource.getrusage(resource.RUSAGE_SELF)
    cpu_file.write_text(json.dumps({"cpu_seconds": own.ru_utime + own.ru_stime}))


def redis_calls(stack) -> Counter:
    """Commands Redis has run so far, by command (INFO commandstats)."""
    stats = redis_client(stack.settings, "cli").info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()})


def per_upload(counts: Counter, uploads: int) -> dict[str, float]:
    return {name: round(count / uploads, 2) for name, count in sorted(counts.items()) if count > 0}


def wait_queued(stack, count: int, timeout: float = 60.0) -> None:
    queue = make_queue(redis_client(stack.settings, "cli"), stack.settings)
    deadline = time.monotonic() + timeout
    while queue.count < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {queue.count} of {count} jobs queued within {timeout} s")
        time.sleep(0.1)


def profile_worker(stack, data: list[bytes], out: Path) -> dict:
    """Part 1: the uploads queued with no worker running, then drained by one profiled worker."""
    client = pipeline.Client(stack.api_url, stack.settings.api_token)
    created = [client.create(len(image)) for image in data]
    requests_before, commands_before = request_counts(stack.settings), redis_calls(stack)
    for upload, image in zip(created, data):
        client.put(upload, image)
    wait_queued(stack, len(created))
    collapsed, cpu_file = out / "worker.collapsed.txt", out / "worker.cpu.json"
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/python -m pip install -e '.[bench]'")
    env = {**stack.env("worker"), "LOG_LEVEL": "INFO"}
    began = time.perf_counter()
    run = subprocess.run([py_spy, "record", "--format", "raw", "--rate", str(SAMPLE_RATE), "--output", str(collapsed),
                          "--", sys.executable, "-m", "bench.profile_worker", "--drain", str(cpu_file)],
                         env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if run.returncode != 0:
        raise RuntimeError(f"the profiled worker failed ({run.returncode}): {run.stderr[-2000:]}")
    worker_cpu = json.loads(cpu_file.read_text())["cpu_seconds"]
    db = connect(stack.settings.database)
    rows = pipeline.row_timestamps(db, [upload["id"] for upload in created])
    db.close()
    failed = [row for row in rows.values() if row["status"] != "completed"]
    if failed:
        raise RuntimeError(f"{len(failed)} uploads did not complete, e.g. {failed[0]}")
    requests = request_counts(stack.settings) - requests_before
    commands = redis_calls(stack) - commands_before
    cpu, waiting = breakdown(collapsed)
    total = sum(cpu.values())
    # The process's CPU time shared out by its on-CPU samples, its start-up taken out.
    per_image_ms = worker_cpu * 1000 * (1 - cpu.get(START_UP, 0) / total) / len(created)
    jobs = total - cpu.pop(START_UP, 0)
    return {
        "uploads": len(created),
        "drain_seconds": round(elapsed, 2),
        "worker_cpu_ms_per_image": round(per_image_ms, 1),
        "samples": total,
        "share": {name: round(count / jobs, 3) for name, count in cpu.items()},
        "cpu_ms_per_image": {name: round(per_image_ms * count / jobs, 2) for name, count in cpu.items()},
        "waiting_ms_per_image": {name: round(count * 1000 / SAMPLE_RATE / len(created), 2)
                                 for name, count in waiting.items() if name != START_UP},
        "minio_requests_per_upload": per_upload(requests, len(created)),
        "redis_commands_per_upload": per_upload(commands, len(created)),
        "redis_commands_per_upload_total": round(sum(commands.values()) / len(created), 1),
    }


def side_by_side(stack, data: list[bytes], idle_uploads: int, workers: int = 2) -> dict:
    """Part 2: the shipped workers, with make_derivatives alone just before and after the burst."""
    for index in range(workers):
        stack.start_worker(index)
    pipeline.wait_for_workers(stack, workers)
    pipeline.burst(stack, data[:2 * workers])
    idle = pipeline.idle_latency(stack, data[0], idle_uploads)
    before_rate, before_cpu = processing.pure_throughput(data, workers)
    requests_before = request_counts(stack.settings)
    burst = pipeline.burst(stack, data)
    requests = request_counts(stack.settings) - requests_before
    after_rate, after_cpu = processing.pure_throughput(data, workers)
    pure_rate = 2 / (1 / before_rate + 1 / after_rate)
    pure_cpu = (before_cpu + after_cpu) / 2
    pipeline_cpu = sum(burst["cpu_ms_per_image"].values())
    return {
        "idle_p50_ms": idle["p50_ms"], "idle_p95_ms": idle["p95_ms"], "idle_stages_ms": idle["stage_medians_ms"],
        "burst_images_per_s": burst["images_per_s"], "pure_images_per_s": round(pure_rate, 2),
        "burst_over_pure": round(burst["images_per_s"] / pure_rate, 3),
        "cpu_ms_per_image": burst["cpu_ms_per_image"], "pipeline_cpu_ms_per_image": round(pipeline_cpu, 1),
        "pure_cpu_ms_per_image": round(pure_cpu, 1), "cpu_over_pure": round(pipeline_cpu / pure_cpu, 3),
        "minio_requests_per_upload": per_upload(requests, len(data)),
    }


def show(result: dict) -> None:
    worker = result["worker"]
    print(f"\nThe worker, {worker['uploads']} uploads drained by one profiled worker: "
          f"{worker['worker_cpu_ms_per_image']} CPU ms per image, {worker['samples']} samples")
    print("| part | share | CPU ms per image |\n| --- | ---: | ---: |")
    for name, share in worker["share"].items():
        print(f"| {name} | {share:.1%} | {worker['cpu_ms_per_image'][name]} |")
    print("Waiting (ms per image, wall clock, every thread):", worker["waiting_ms_per_image"])
    print("\nMinIO requests per upload (its own metrics):", worker["minio_requests_per_upload"])
    print(f"Redis commands per upload (INFO commandstats), {worker['redis_commands_per_upload_total']} in all:",
          worker["redis_commands_per_upload"])
    if "side_by_side" in result:
        side = result["side_by_side"]
        print("\nSide by side, the shipped workers:")
        for name in ("idle_p50_ms", "idle_p95_ms", "burst_images_per_s", "pure_images_per_s", "burst_over_pure",
                     "pipeline_cpu_ms_per_image", "pure_cpu_ms_per_image", "cpu_over_pure"):
            print(f"  {name}: {side[name]}")
        print("  CPU ms per image by process:", side["cpu_ms_per_image"])
        print("  MinIO requests per upload in the burst:", side["minio_requests_per_upload"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=60, help="1 MP uploads drained by the profiled worker")
    parser.add_argument("--burst", type=int, default=30, help="1 MP uploads in the side-by-side burst")
    parser.add_argument("--idle", type=int, default=8, help="single uploads timed on the idle stack")
    parser.add_argument("--profile-only", action="store_true", help="skip the side-by-side part")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "tmp" / "profile")
    parser.add_argument("--drain", type=Path, help=argparse.SUPPRESS)  # the profiled worker's own run
    args = parser.parse_args()
    if args.drain:
        drain(args.drain)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    stack = start_stack(workers=0)
    try:
        result = {"worker": profile_worker(stack, images(args.uploads), args.out)}
        if not args.profile_only:
            result["side_by_side"] = side_by_side(stack, images(args.burst), args.idle)
    finally:
        remove_stack(stack)
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    show(result)
    print(f"\nwritten: {args.out}/summary.json, {args.out}/worker.collapsed.txt")


if __name__ == "__main__":
    main()
