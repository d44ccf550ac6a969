import os
from datetime import datetime, timedelta, timezone

from imgpipe.processes import process_stat
from polling import eventually
from processor.worker import still_running


def test_a_worker_is_running_while_its_pid_is_the_process_that_registered():
    assert still_running(os.getpid(), datetime.now(timezone.utc))


def test_a_pid_taken_by_a_process_started_after_the_worker_registered_is_another_process():
    assert not still_running(os.getpid(), datetime.now(timezone.utc) - timedelta(days=1))


def test_a_pid_no_process_has_is_a_dead_worker():
    assert not still_running(2 ** 22 + 1, datetime.now(timezone.utc))


def test_a_killed_worker_not_yet_reaped_is_dead():
    """A worker SIGKILLed with its supervisor stays a zombie, pid and start time intact, until it
    is reaped: a supervisor starting again in that moment must still see it as gone."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    born = datetime.now(timezone.utc)  # a worker registers once its process has started
    try:
        eventually(lambda: process_stat(pid).exited, 10, "the child to exit", interval=0.001)
        assert not still_running(pid, born)
    finally:
        os.waitpid(pid, 0)
