import os
from datetime import datetime, timedelta, timezone

from processor.worker import still_running


def test_a_worker_is_running_while_its_pid_is_the_process_that_registered():
    assert still_running(os.getpid(), datetime.now(timezone.utc))


def test_a_pid_taken_by_a_process_started_after_the_worker_registered_is_another_process():
    assert not still_running(os.getpid(), datetime.now(timezone.utc) - timedelta(days=1))


def test_a_pid_no_process_has_is_a_dead_worker():
    assert not still_running(2 ** 22 + 1, datetime.now(timezone.utc))
