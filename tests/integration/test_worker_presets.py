"""A worker runs only with the API's presets: one whose file lacks a preset the API accepts would
leave that preset unmade for every upload that asks for it, so it refuses to start instead."""

from __future__ import annotations

import socket
import subprocess
import sys

from rq import Worker

from cli.stack import PROJECT_ROOT
from imgpipe.presets import BUILT_IN
from imgpipe.queues import SERIALIZER, presets_version_key
from imgpipe.redis_connection import redis_client
from polling import eventually
from processor.worker import EXIT_CANNOT_START

WITHOUT_THUMBNAIL = "[presets.resized]\nbox = [1600, 1600]\n\n[presets.compressed]\n"


def worker_command(stack, presets: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], cwd=PROJECT_ROOT, text=True,
                            env={**stack.env("worker"), "IMGPIPE_PRESETS": presets}, **popen)


def registered(connection, supervisor_pid: int) -> bool:
    """Whether a worker process of that supervisor registered with RQ (processor.worker names them)."""
    return any(worker.name.startswith(f"{socket.gethostname()}.{supervisor_pid}.")
               for worker in Worker.all(connection=connection, serializer=SERIALIZER))


def test_a_worker_with_other_presets_than_the_api_s_refuses_to_start(stack, tmp_path):
    assert stack.settings.presets == "" and BUILT_IN.names == ("resized", "compressed", "thumbnail")
    connection = redis_client(stack.settings, "cli")
    assert connection.get(presets_version_key(stack.settings)).decode() == BUILT_IN.version, "recorded by the API"
    other = tmp_path / "presets.toml"
    other.write_text(WITHOUT_THUMBNAIL)

    worker = worker_command(stack, str(other), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = worker.communicate(timeout=60)

    assert worker.returncode == EXIT_CANNOT_START, output
    assert (f"the worker cannot start: its presets ({other}, version " in output
            and f"are not the API's (version {BUILT_IN.version}," in output), output
    assert "not starting the worker again" in output
    assert not registered(connection, worker.pid), "it never took a job"


def test_a_worker_waits_for_the_api_s_record_and_healthz_writes_it_again(stack, api, tmp_path):
    connection = redis_client(stack.settings, "cli")
    key = presets_version_key(stack.settings)
    connection.delete(key)  # as a Redis that lost its data would have it
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = worker_command(stack, "", stdout=out, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: "waiting for the API to record its presets" in log.read_text(), 30, "the worker to wait")
        assert not registered(connection, worker.pid)
        assert api.get("/healthz").status_code == 200
        assert connection.get(key).decode() == BUILT_IN.version
        eventually(lambda: registered(connection, worker.pid), 30, "the worker to start once the presets are recorded")
    finally:
        worker.terminate()
        worker.wait(30)
