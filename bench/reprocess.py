"""A fresh upload's end-to-end time while `imgpipe reprocess` re-makes many stored uploads.

The stack's uploads are first made under the built-in presets; the workers are then restarted
with a presets file that changes the thumbnail, and the fresh uploads' latency is measured on
the same workers three times: with nothing else to do, while `imgpipe reprocess` (as shipped:
one job out at a time) works through every stored upload, and with nothing to do again. The
two quiet runs bracket the busy one, so a change in the machine's background load during the
measurement lands on both sides of the comparison. The reprocess must still be running when
the busy measurement ends, or it would not have been measured against; what it has not done
by then is stopped with Ctrl-C, as a user would.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from rq.registry import StartedJobRegistry

from bench import pipeline
from cli.stack import PROJECT_ROOT, Stack
from imgpipe.queues import make_reprocess_queue

CHANGED_THUMBNAIL = """\
[presets.resized]
box = [1024, 1024]

[presets.compressed]

[presets.thumbnail]
box = [200, 200]
"""


def use_presets(stack: Stack, path: Path, workers: int) -> None:
    stack.settings = dataclasses.replace(stack.settings, presets=str(path))
    for name in [name for name in stack.processes if name.startswith("worker")]:
        stack.stop_process(name)
    for index in range(workers):
        stack.start_worker(index)
    pipeline.wait_for_workers(stack, workers)


def fresh_upload_latency_during_reprocess(stack: Stack, single: bytes, stored: list[bytes], fresh_uploads: int,
                                          workers: int) -> dict:
    """Idle and during-reprocess latency of `fresh_uploads` single uploads, `stored` uploads stored first."""
    burst = pipeline.burst(stack, stored)
    presets = stack.path("reprocess-presets.toml")
    presets.write_text(CHANGED_THUMBNAIL)
    use_presets(stack, presets, workers)
    before = pipeline.idle_latency(stack, single, fresh_uploads)
    command = subprocess.Popen([sys.executable, "-m", "cli.main", "reprocess"], cwd=PROJECT_ROOT, env=stack.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        began = time.monotonic()
        during = pipeline.idle_latency(stack, single, fresh_uploads)
        measured_for = time.monotonic() - began
        still_running = command.poll() is None
    finally:
        command.send_signal(signal.SIGINT)
        output, _ = command.communicate(timeout=120)
    done = _reprocessed(output)
    _wait_for_reprocess_jobs_to_end(stack)
    after = pipeline.idle_latency(stack, single, fresh_uploads)
    idle_p50, idle_p95 = ((before[key] + after[key]) / 2 for key in ("p50_ms", "p95_ms"))
    return {
        "stored_uploads": len(stored),
        "stored_burst_images_per_s": burst["images_per_s"],
        "fresh_uploads": fresh_uploads,
        "idle_before": before,
        "during_reprocess": during,
        "idle_after": after,
        "p50_ratio": round(during["p50_ms"] / idle_p50, 3),
        "p95_ratio": round(during["p95_ms"] / idle_p95, 3),
        "reprocess_running_throughout": still_running,
        "reprocessed_while_measured": done,
        "reprocess_uploads_per_s": round(done / measured_for, 1),
    }


def _wait_for_reprocess_jobs_to_end(stack: Stack, timeout: float = 60.0) -> None:
    """A job running when the command was stopped finishes on its own; wait for it."""
    queue = make_reprocess_queue(redis.Redis.from_url(stack.settings.redis_url), stack.settings)
    deadline = time.monotonic() + timeout
    while queue.count or StartedJobRegistry(queue=queue).count:
        if time.monotonic() > deadline:
            raise RuntimeError("reprocess jobs still running a minute after the command stopped")
        time.sleep(0.05)


def _reprocessed(output: str) -> int:
    """How many uploads the stopped command had done, from its last line ("Stopped after N of M: ...")."""
    for line in reversed(output.splitlines()):
        if line.startswith(("Stopped after ", "Done: ")):
            words = line.split()
            return int(words[2]) if line.startswith("Stopped") else sum(
                int(word) for word in words[1:] if word.isdigit())
    raise RuntimeError(f"imgpipe reprocess said nothing about what it did:\n{output}")
