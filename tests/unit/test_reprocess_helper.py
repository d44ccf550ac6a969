"""The reprocess helper: the same derivatives as in the worker, at the lowest priority, stopped
while image jobs run, and gone with the worker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import imagegen
from imgpipe.processes import is_running, process_stat
from polling import eventually
from processor.imaging import ImageRejected, make_derivatives
from processor import reprocess
from processor.reprocess import HELPER_NICENESS, Helper

OPTIONS = {"max_pixels": 100_000_000}
REPO_ROOT = Path(__file__).resolve().parents[2]


class Way:
    """What Helper.derive asks of a GiveWay: whether to hold still now."""

    def __init__(self, busy=lambda: False):
        self.busy = busy
        self.waited = 0.0


@pytest.fixture
def helper():
    helper = Helper()
    yield helper
    helper.process.kill()
    helper.process.join(5)


def test_the_helper_makes_what_the_worker_would_at_the_lowest_priority(helper):
    data = imagegen.photo_like_jpeg(800, 600, seed=1)
    assert helper.derive(data, OPTIONS, Way()) == make_derivatives(data, **OPTIONS)
    assert os.getpriority(os.PRIO_PROCESS, helper.process.pid) == HELPER_NICENESS


def test_a_refusal_comes_back_as_itself(helper):
    with pytest.raises(ImageRejected) as caught:
        helper.derive(b"not an image at all", OPTIONS, Way())
    assert caught.value.code == "not_an_image"


def test_the_helper_is_stopped_while_image_jobs_run_and_goes_on_after(helper):
    data = imagegen.photo_like_jpeg(3000, 2000, seed=2)
    images_running = threading.Event()
    images_running.set()
    seen_stopped = threading.Event()

    def busy() -> bool:
        if images_running.is_set() and process_stat(helper.process.pid).state == "T":
            seen_stopped.set()
            images_running.clear()  # the image job ends once the helper was seen stopped
        return images_running.is_set()

    made = helper.derive(data, OPTIONS, Way(busy))
    assert seen_stopped.is_set()
    assert made.width == 3000 and process_stat(helper.process.pid).state != "T"


def test_the_helper_dies_with_its_worker(tmp_path):
    script = ("import sys, time\n"
              "from processor.reprocess import Helper\n"
              "helper = Helper()\n"
              "print(helper.process.pid, flush=True)\n"
              "time.sleep(60)\n")
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    helper_pid = int(worker.stdout.readline())
    worker.kill()
    worker.wait(10)
    eventually(lambda: not is_running(helper_pid), 10, "the helper to end with its worker")


def test_a_job_gives_way_for_a_bounded_time_in_all(monkeypatch):
    """However long image jobs keep coming, a reprocess job holds still for GIVE_WAY_MAX_SECONDS
    in all, then goes on: a long burst of uploads gets its worker back."""
    monkeypatch.setattr(reprocess, "image_jobs_busy", lambda images: True)
    monkeypatch.setattr(reprocess, "GIVE_WAY_MAX_SECONDS", 0.1)
    way = reprocess.GiveWay(images=None)
    began = time.monotonic()
    way.wait()
    way.wait()
    assert 0.1 <= time.monotonic() - began < 1.0
    assert not way.busy()
