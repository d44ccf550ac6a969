"""What one upload asks of MinIO and what its job asks of Redis, counted by the servers themselves
(MinIO's per-API metrics, Redis's MONITOR) on a real stack: the worker reads an original with one
GET and no HEAD, over a connection it keeps, writes each derivative once, and sends RQ's worker
heartbeat once per lifetime a job changes it to, not once per call RQ makes
(docs/design/cost-per-image.md)."""

from __future__ import annotations

import threading

import pytest

from bench.minio_requests import request_counts
from imgpipe.redis_connection import redis_client
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from stacks import running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # No sweep while counting: housekeeping lists and looks up keys of its own.
    with running_stack(tmp_path_factory.mktemp("requests-per-upload"), sweep_interval=3600) as running:
        yield running


def upload(stack, path) -> dict:
    api = Api.of(stack)
    created = api.create_for(path)
    put_file(created["upload"], path)
    assert api.wait_final(created["id"])["status"] == "completed"
    return api.get(f"/uploads/{created['id']}/results").json()


class Monitor:
    """Every command Redis runs while it is open, as MONITOR reports them."""

    def __init__(self, stack):
        self.settings = stack.settings
        self.connection = redis_client(stack.settings, "cli")
        self.commands: list[str] = []
        self.listening, self.stopping = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self):
        with self.connection.monitor() as monitor:
            self.listening.set()
            for command in monitor.listen():
                if self.stopping.is_set():
                    return
                self.commands.append(command["command"])

    def start(self) -> "Monitor":
        self.thread.start()
        assert self.listening.wait(10)
        return self

    def stop(self) -> list[str]:
        """The commands seen; a PING of its own makes MONITOR answer once more, to notice the stop."""
        self.stopping.set()
        redis_client(self.settings, "cli").ping()
        self.thread.join(10)
        return self.commands


def test_an_upload_makes_one_get_and_one_put_per_object(stack, tmp_path):
    first, second = make_jpegs(tmp_path / "in", 2)
    upload(stack, first)  # the worker's own first requests (its connections, the bucket) out of the count
    before = request_counts(stack.settings)
    results = upload(stack, second)
    made = request_counts(stack.settings) - before
    derivatives = sum(len(formats) for formats in results["presets"].values())
    assert made["GetObject"] == 1, made
    assert made["HeadObject"] == 0, made
    assert made["PutObject"] == 1 + derivatives, made  # the client's PUT, then each derivative


def test_a_job_sends_the_worker_heartbeat_once_per_lifetime(stack, tmp_path):
    first, second = make_jpegs(tmp_path / "beats", 2)
    upload(stack, first)
    monitor = Monitor(stack).start()
    upload(stack, second)
    # The job ends with the worker back on BLPOP, waiting for the next one.
    eventually(lambda: any(command.startswith("BLPOP") for command in monitor.commands), 10,
               "the worker to wait for its next job")
    commands = monitor.stop()
    beats = [command for command in commands if command.startswith("HSET rq:worker:") and " last_heartbeat " in command]
    lifetimes = [command.split()[2] for command in commands
                 if command.startswith("EXPIRE rq:worker:") and ":executions" not in command]
    # One as the job starts (its timeout and a minute), one as the worker goes back to waiting.
    assert len(beats) == 2, commands
    assert lifetimes == ["180", "480"], commands


def test_reading_objects_one_after_another_keeps_one_connection(stack):
    storage = Storage(stack.settings, ROOT)
    storage.write("resized/connection-check.jpg", b"x" * 5000, "image/jpeg")
    pool = storage.client._http.connection_from_url(stack.settings.s3_endpoint_url)

    def open_sockets() -> list[int]:
        """The local ports of the pooled connections whose socket is open."""
        return [connection.sock.getsockname()[1] for connection in list(pool.pool.queue)
                if connection is not None and connection.sock is not None]

    ports = []
    for _ in range(3):
        with storage.fetch("resized/connection-check.jpg") as fetched:
            assert fetched.read(fetched.stored.size) == b"x" * 5000
        ports += open_sockets()
    assert len(ports) == 3 and len(set(ports)) == 1, ports  # one socket, kept for the next read
    with storage.fetch("resized/connection-check.jpg") as unread:
        assert unread.stored.size == 5000  # refused on its headers: its body is not transferred
    assert open_sockets() == [], "a body left unread closes its connection"
    storage.remove(["resized/connection-check.jpg"])
