"""A power loss in the middle of a burst: every process of the stack (MinIO, Redis, the API,
the relay, the workers and all their children) SIGKILLed at once, with thousands of upload
URLs handed out and never used, then the stack started again on the same data and ports.
Every upload whose PUT was answered 200 ends completed within 60 s of the restart.

The sweeper runs with its shipped interval and minimum age, so the bound is the one users get.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.sweeper import insert_abandoned
from imgpipe import uploads
from pipeline_client import Api, curl_put, make_jpegs
from stacks import process_tree

ABANDONED = 3000
BURST = 60
SHIPPED_SWEEP = {"sweep_interval": 5.0, "sweep_min_age": 10.0}


def power_loss(stack) -> int:
    """SIGKILL every process of the stack in one go; returns how many there were."""
    pids = [pid for process in stack.processes.values() for pid in process_tree(process.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for process in stack.processes.values():
        process.wait()
    stack.processes.clear()
    return len(pids)


def test_every_upload_answered_200_completes_within_60_s_of_a_restart_after_a_power_loss(stack_with, tmp_path):
    stack = stack_with(**SHIPPED_SWEEP)
    insert_abandoned(uploads.connect(stack.settings.database), ABANDONED, stack.settings.upload_url_ttl)
    files = make_jpegs(tmp_path / "in", BURST, size=(1600, 1200))
    answered: list[str] = []
    half_answered = threading.Event()

    def upload(path):
        try:
            created = Api.of(stack).create_for(path)
            if curl_put(created["upload"], path).stdout == "200":
                answered.append(created["id"])
                if len(answered) >= BURST // 2:
                    half_answered.set()
        except Exception:  # the stack died under this upload: it was never acknowledged
            pass

    with ThreadPoolExecutor(8) as pool:
        burst = [pool.submit(upload, path) for path in files]
        assert half_answered.wait(60), "the burst never got half way"
        killed = power_loss(stack)
        for future in burst:
            future.result()
    acknowledged = list(answered)
    database = uploads.connect(stack.settings.database)
    states = [uploads.get_upload(database, upload_id)["status"] for upload_id in acknowledged]

    restarted = time.monotonic()
    stack.start()
    up_again = time.monotonic() - restarted
    api = Api.of(stack)
    last_completed = 0.0
    for upload_id in acknowledged:
        remaining = 60 - (time.monotonic() - restarted)
        assert api.wait_final(upload_id, timeout=max(remaining, 0.1))["status"] == "completed"
        last_completed = time.monotonic() - restarted
    print(f"\n{killed} processes killed; {len(acknowledged)} uploads answered 200, then"
          f" {dict((state, states.count(state)) for state in set(states))};"
          f" the stack was up again in {up_again:.1f} s and the last completed {last_completed:.1f} s"
          " after the restart began")

    assert killed >= 6
    assert len(acknowledged) >= BURST // 2
    assert any(state != "completed" for state in states), "every upload was done before the power went"
