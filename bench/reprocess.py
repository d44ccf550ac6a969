"""A fresh upload's end-to-end time while `imgpipe reprocess` re-makes many stored uploads.

The stack's uploads are first made under the built-in presets; the workers are then restarted
with a presets file that changes the thumbnail, and fresh uploads are timed on the same workers
in alternating blocks: with nothing else to do, then while `imgpipe reprocess` (as shipped: one
job out at a time) works through the stored uploads, then alone again, and so on. The command
is stopped with Ctrl-C after each busy block and started again before the next, as a user may,
and goes on where it stopped. Alternating short blocks spreads a change in the machine's
background load over both sides of the comparison. The reprocess must still have work when
each busy block ends, or that block would not have been measured against it.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

from rq.registry import StartedJobRegistry

from bench import pipeline
from cli.stack import PROJECT_ROOT, Stack
from imgpipe.queues import make_reprocess_queue
from imgpipe.redis_connection import redis_client

BLOCKS = 4
CHANGED_THUMBNAIL = """\
[presets.resized]
box = [1024, 1024]

[presets.compressed]

[presets.thumbnail]
box = [200, 200]
"""


def use_presets(stack: Stack, path: str, workers: int) -> None:
    """Restart the API, then the workers, with the presets file at `path` ("" for the built-in
    presets): a worker refuses to start with presets other than the API's."""
    stack.settings = dataclasses.replace(stack.settings, presets=path)
    stack.stop_process("api")
    stack.start_api()
    for name in [name for name in stack.processes if name.startswith("worker")]:
        stack.stop_process(name)
    for index in range(workers):
        stack.start_worker(index)
    pipeline.wait_for_workers(stack, workers)


def fresh_upload_latency_during_reprocess(stack: Stack, single: bytes, stored: list[bytes], fresh_uploads: int,
                                          workers: int) -> dict:
    """Latency of `fresh_uploads` single uploads alone and as many during the reprocess of
    `stored` uploads stored first, in BLOCKS alternating blocks of each."""
    burst = pipeline.burst(stack, stored)
    presets = stack.path("reprocess-presets.toml")
    presets.write_text(CHANGED_THUMBNAIL)
    use_presets(stack, str(presets), workers)
    per_block = max(1, fresh_uploads // BLOCKS)
    alone: tuple[list, list] = ([], [])
    during: tuple[list, list] = ([], [])
    done, busy_seconds, ran_throughout = 0, 0.0, True
    try:
        for _ in range(BLOCKS):
            for into, taken in zip(alone, pipeline.timed_single_uploads(stack, single, per_block, warmups=0)):
                into.extend(taken)
            command = subprocess.Popen([sys.executable, "-m", "cli.main", "reprocess"], cwd=PROJECT_ROOT,
                                       env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            began = time.monotonic()
            for into, taken in zip(during, pipeline.timed_single_uploads(stack, single, per_block, warmups=0)):
                into.extend(taken)
            busy_seconds += time.monotonic() - began
            ran_throughout = ran_throughout and command.poll() is None
            command.send_signal(signal.SIGINT)
            output, _ = command.communicate(timeout=120)
            done += _reprocessed(output)
            _wait_for_reprocess_jobs_to_end(stack)
    finally:
        use_presets(stack, "", workers)
    idle, busy = pipeline.latency_summary(*alone), pipeline.latency_summary(*during)
    return {
        "stored_uploads": len(stored),
        "stored_burst_images_per_s": burst["images_per_s"],
        "fresh_uploads": len(during[0]),
        "blocks": BLOCKS,
        "idle": idle,
        "during_reprocess": busy,
        "p50_ratio": round(busy["p50_ms"] / idle["p50_ms"], 3),
        "p95_ratio": round(busy["p95_ms"] / idle["p95_ms"], 3),
        "reprocess_running_throughout": ran_throughout,
        "reprocessed_while_measured": done,
        "reprocess_uploads_per_s": round(done / busy_seconds, 1),
    }


def _wait_for_reprocess_jobs_to_end(stack: Stack, timeout: float = 60.0) -> None:
    """A job running when the command was stopped finishes on its own; wait for it."""
    queue = make_reprocess_queue(redis_client(stack.settings, "cli"), stack.settings)
    deadline = time.monotonic() + timeout
    while queue.count or StartedJobRegistry(queue=queue).count:
        if time.monotonic() > deadline:
            raise RuntimeError("reprocess jobs still running a minute after the command stopped")
        time.sleep(0.05)


def _reprocessed(output: str) -> int:
    """How many uploads a stopped command had done, from its last line ("Stopped after N of M: ...")."""
    for line in reversed(output.splitlines()):
        if line.startswith("Stopped after "):
            return int(line.split()[2])
        if line.startswith("Done: "):
            return sum(int(word) for word in line.split()[1:] if word.isdigit())
    raise RuntimeError(f"imgpipe reprocess said nothing about what it did:\n{output}")
