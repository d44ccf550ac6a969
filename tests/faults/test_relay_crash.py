"""The relay killed between taking events and enqueueing them: nothing is lost.

The sweeper is kept out of these tests (its minimum age is an hour), so every upload that
completes got there through its own event.
"""

from __future__ import annotations

import os
import random
import signal
import threading

import pytest

from pipeline_client import Api, make_jpegs, upload_all
from imgpipe.queues import inflight_key
from imgpipe.redis_connection import redis_client
from polling import eventually

NO_SWEEP = 3600.0


def test_events_left_in_flight_by_a_dead_relay_are_redriven(stack_with, tmp_path):
    stack = stack_with(sweep_min_age=NO_SWEEP)
    stack.stop_process("relay")
    api = Api.of(stack)
    created = upload_all(api, make_jpegs(tmp_path / "in", 5))
    connection = redis_client(stack.settings, "cli")
    eventually(lambda: connection.llen(stack.settings.events_key) >= 5, 10, "MinIO's five events")
    for _ in range(3):  # what a relay that died right after BLMOVE leaves behind
        connection.lmove(stack.settings.events_key, inflight_key(stack.settings), "LEFT", "RIGHT")
    assert connection.llen(inflight_key(stack.settings)) == 3

    stack.start_relay()
    finals = [api.wait_final(upload["id"]) for upload in created]

    assert [final["status"] for final in finals] == ["completed"] * 5
    assert connection.llen(inflight_key(stack.settings)) == 0
    assert connection.llen(stack.settings.events_key) == 0


@pytest.mark.engines("sqlite")  # the fault and the database path of the test above, many times over
def test_a_relay_killed_again_and_again_during_a_burst_loses_nothing(stack_with, tmp_path):
    """Uploads go in six waves and each wave waits for one more kill, so the kills land
    among the events however fast this machine uploads."""
    stack = stack_with(sweep_min_age=NO_SWEEP)
    api = Api.of(stack)
    files = make_jpegs(tmp_path / "in", 60)
    kills = 0
    stop = threading.Event()
    pace = random.Random(5)

    def keep_killing_the_relay():
        nonlocal kills
        while not stop.wait(pace.uniform(0.05, 0.4)):
            os.killpg(stack.processes["relay"].pid, signal.SIGKILL)
            stack.processes["relay"].wait()
            kills += 1
            stack.start_relay()

    killer = threading.Thread(target=keep_killing_the_relay)
    killer.start()
    created = []
    try:
        for wave in range(6):
            kills_before = kills
            created += upload_all(api, files[wave * 10:(wave + 1) * 10], threads=4)
            eventually(lambda: kills > kills_before or not killer.is_alive(), 30, "one more kill of the relay",
                       interval=0.02)
    finally:
        stop.set()
        killer.join()
    finals = [api.wait_final(upload["id"], timeout=60) for upload in created]

    assert kills >= 6
    assert [final["status"] for final in finals] == ["completed"] * 60
