"""imgpipe across hosts: MinIO distributed over four nodes, the API on two hosts, workers on
two, one Redis and PostgreSQL, with hosts killed, cut off and brought back mid-burst.

Each test starts its own cluster (see conftest.py) and ends by checking every upload: final
state, original, and derivatives present once and showing the same picture."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import pytest

from cluster_stack import MINIO_HOSTS, MINIO_NAME, POSTGRES_PORT, REDIS_PORT
from cluster_client import PUT_DEADLINE, ClusterClient, StatusLog, check_outputs
from imgpipe import uploads
from imgpipe.queues import relayed_count_key
from pipeline_client import make_jpegs
from polling import eventually

CUT_SECONDS = 20
# MinIO drops a lock its holder stopped refreshing after 1 to 2 minutes.
STALE_LOCK_WAIT = 180
STALE_LOCK_TIMEOUT = 420


class Burst:
    """Uploads sent from a thread of their own, so the test can break things while they go."""

    def __init__(self, client: ClusterClient, files, threads: int = 4):
        self.sent = []
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(client, files, threads), name="burst")
        self._thread.start()

    def _run(self, client, files, threads):
        try:
            client.send(files, threads=threads, on_sent=self.sent.append)
        except BaseException as error:  # raised in the test by join()
            self.error = error

    def join(self, timeout: float = 120) -> list:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the burst did not finish"
        if self.error is not None:
            raise self.error
        return self.sent


def processing_job_on(cluster, statuses: StatusLog, host: str) -> str | None:
    """An upload whose row is processing and whose job a worker on `host` holds."""
    for job_id in cluster.jobs_held_on(host):
        upload_id = job_id.removeprefix("process-")
        if statuses.latest(upload_id) == "processing":
            return upload_id
    return None


def nothing_in_flight_to_the_database(cluster, host: str) -> bool:
    """Whether every statement the host sent PostgreSQL has run: no byte waits in its sockets'
    send queues or in the server's receive queues from it, and no backend of its is running one.
    A frozen host sends nothing more, so once true it stays true."""
    server, address = f"{cluster.address('postgres')}:{POSTGRES_PORT}", cluster.address(host)
    # With a state filter, ss prints Recv-Q, Send-Q, local and peer address.
    sending = cluster.run_on(host, ["ss", "-Htn", "state", "established", "dst", server], 10)
    receiving = cluster.run_on("postgres", ["ss", "-Htn", "state", "established", "src", server, "dst", address], 10)
    if any(int(line.split()[1]) for line in sending.splitlines()) or any(
            int(line.split()[0]) for line in receiving.splitlines()):
        return False
    database = cluster.database()
    try:
        return not database.query("SELECT pid FROM pg_stat_activity WHERE host(client_addr) = ? AND state = 'active'",
                                  [address])
    finally:
        database.close()


def freeze_mid_job(cluster, statuses: StatusLog, host: str) -> str | None:
    """Freeze the host while one of its workers holds a job whose row is processing, and return
    that upload; None, with the host running again, when no such job is held once it is frozen.

    The status log runs behind the rows, and a job lasts a few tenths of a second: a host
    killed on its word alone may have finished the job first. A frozen host finishes nothing,
    so a fresh read of the row says whether a kill now lands mid-job."""
    if processing_job_on(cluster, statuses, host) is None:
        return None
    cluster.network.freeze_host(host)
    eventually(lambda: nothing_in_flight_to_the_database(cluster, host), 10,
               f"the last statements {host} sent before it froze to land", interval=0.02)
    database = cluster.database()
    try:
        for job_id in cluster.jobs_held_on(host):
            row = uploads.get_upload(database, job_id.removeprefix("process-"))
            if row is not None and row["status"] == "processing":
                return row["id"]
    finally:
        database.close()
    cluster.network.thaw_host(host)
    return None


def first_node_of_the_servers(cluster) -> str:
    """The MinIO node the servers connect to first: the first address their hosts file gives."""
    first = cluster.run_on("worker1", ["getent", "ahostsv4", MINIO_NAME], timeout=10).split()[0]
    return next(node for node in MINIO_HOSTS if cluster.address(node) == first)


def send_until_processed_on(cluster, client, statuses, host, files, *, first: int, wave: int = 6) -> list:
    """Send the files a few at a time until one of them is processed on the host."""
    sent = []
    for start in range(0, len(files), wave):
        sent += client.send(files[start:start + wave], first=first + start)
        statuses.wait_final([upload.id for upload in sent], timeout=60)
        if cluster.processed_on(host, [upload.id for upload in sent]):
            return sent
    raise AssertionError(f"{host} processed none of {len(sent)} uploads sent after it came back")


def test_uploads_spread_over_all_four_minio_nodes_all_complete(cluster, tmp_path):
    client = ClusterClient(cluster)
    files = make_jpegs(tmp_path / "in", 200)
    started = time.monotonic()
    with StatusLog(cluster) as statuses:
        sent = client.send(files)
        statuses.wait_final([upload.id for upload in sent], timeout=120)
    print(f"200 uploads final in {time.monotonic() - started:.1f} s")

    for url in cluster.api_urls:
        assert client.http().get(f"{url}/healthz", timeout=10).json()["database"] == {"ok": True, "engine": "postgresql"}
    assert Counter(upload.node for upload in sent) == {node: 50 for node in MINIO_HOSTS}
    assert Counter(upload.api_host for upload in sent) == {"api1": 100, "api2": 100}
    assert not statuses.moved_back()
    check_outputs(cluster, client, sent, read_from=list(MINIO_HOSTS))
    # Every node's events reached Redis, which every host of the subnet can reach, with its password.
    assert int(cluster.redis.get(relayed_count_key(cluster.settings)) or 0) >= len(sent)
    assert redis_first_reply(cluster, b"PING").startswith(b"-NOAUTH")


def redis_first_reply(cluster, command: bytes) -> bytes:
    """What Redis answers a client on the subnet that sends no password."""
    with socket.create_connection((cluster.address("redis"), REDIS_PORT), timeout=5) as sock:
        sock.sendall(command + b"\r\n")
        return sock.makefile("rb").readline().rstrip(b"\r\n")


def test_a_worker_host_killed_mid_burst_loses_nothing(cluster, tmp_path):
    """Every process of worker1 is SIGKILLed while it holds a job (frozen first, so the kill is
    sure to land before that job ends): worker2 works the queue and the relay's sweep
    (its stuck-processing step) re-drives the row the dead host held."""
    client = ClusterClient(cluster)
    files = make_jpegs(tmp_path / "in", 100, size=(1600, 1200))
    started = time.monotonic()
    with StatusLog(cluster) as statuses:
        burst = Burst(client, files)
        held = eventually(lambda: len(burst.sent) >= 20 and freeze_mid_job(cluster, statuses, "worker1"),
                          60, "worker1 frozen while processing a job mid-burst", interval=0.02)
        killed = cluster.network.kill_host("worker1")
        killed_at = time.monotonic()
        sent = burst.join()
        statuses.wait_final([upload.id for upload in sent], timeout=120)
    after_kill = sum(upload.finished_at > killed_at for upload in sent)
    print(f"worker host killed: {len(sent)} uploads final in {time.monotonic() - started:.1f} s,"
          f" {after_kill} sent after the kill")

    assert killed and not cluster.network.pids("worker1")
    assert after_kill >= 20, "the kill was not mid-burst"
    assert uploads.get_upload(cluster.database(), held)["attempts"] >= 2, "the held row was not re-driven"
    assert not statuses.moved_back()
    check_outputs(cluster, client, sent, read_from=list(MINIO_HOSTS))


@pytest.mark.timeout(STALE_LOCK_TIMEOUT)
def test_a_minio_node_killed_mid_burst_loses_nothing(cluster, tmp_path):
    """The node the API, relay and workers reach first is SIGKILLed while PUTs go to all four:
    the servers pass over to the next address, clients PUT to the next node, and the three
    nodes left keep write quorum and send their events.

    A write the dead node was committing leaves that one object locked on the other nodes
    until MinIO expires the lock (unrefreshed for a minute, checked every minute): a retried
    PUT of that original, or a worker's write of that derivative, waits up to two minutes."""
    client = ClusterClient(cluster)
    files = make_jpegs(tmp_path / "in", 100, size=(1600, 1200))
    victim = first_node_of_the_servers(cluster)
    started = time.monotonic()
    with StatusLog(cluster) as statuses:
        burst = Burst(client, files)
        eventually(lambda: len(burst.sent) >= 30, 60, "30 uploads sent", interval=0.02)
        assert cluster.network.kill_host(victim)
        killed_at = time.monotonic()
        sent = burst.join(timeout=PUT_DEADLINE + 30)
        statuses.wait_final([upload.id for upload in sent], timeout=STALE_LOCK_WAIT)
    print(f"MinIO node killed: {len(sent)} uploads final in {time.monotonic() - started:.1f} s")

    after = [upload for upload in sent if upload.finished_at > killed_at + 1]
    assert len(after) >= 20, "the kill was not mid-burst"
    assert any(upload.node == victim for upload in sent if upload.finished_at < killed_at)
    assert not any(upload.node == victim and upload.status == 200 for upload in after)
    assert any(upload.refused_by for upload in after), "no PUT was sent to the dead node"
    assert Counter(upload.node for upload in after).keys() == set(MINIO_HOSTS) - {victim}
    assert not statuses.moved_back()
    check_outputs(cluster, client, sent, read_from=[node for node in MINIO_HOSTS if node != victim])


def test_a_worker_host_cut_off_for_20_s_loses_nothing_and_moves_no_row_back(cluster, tmp_path):
    """worker2's link goes down while it holds a job near the end of a burst and comes back 20 s
    later. Meanwhile the relay's sweep re-drives that row and worker1 completes it, so what
    worker2's own attempt does once it is back lands on a completed row, which it cannot move
    back; worker2 then takes jobs again."""
    client = ClusterClient(cluster)
    files = make_jpegs(tmp_path / "in", 100, size=(1600, 1200))
    started = time.monotonic()
    with StatusLog(cluster) as statuses:
        burst = Burst(client, files)
        held = eventually(lambda: len(burst.sent) == len(files) and cluster.queued_jobs() <= 16
                          and processing_job_on(cluster, statuses, "worker2"), 90,
                          "worker2 processing a job while at most 16 wait", interval=0.02)
        cluster.network.cut("worker2")
        try:
            time.sleep(CUT_SECONDS)
            status_before_return = statuses.latest(held)
        finally:
            cluster.network.reconnect("worker2")
        sent = burst.join()
        statuses.wait_final([upload.id for upload in sent], timeout=120)
        print(f"worker host cut off: {len(sent)} uploads final in {time.monotonic() - started:.1f} s")
        again = send_until_processed_on(cluster, client, statuses, "worker2", make_jpegs(tmp_path / "again", 60),
                                        first=len(sent))
    print(f"worker2 took a job again after {len(again)} more uploads; {statuses.polls} status polls in all")

    assert status_before_return == "completed", f"the row worker2 held was {status_before_return} when it came back"
    assert not statuses.moved_back()
    check_outputs(cluster, client, sent + again, read_from=list(MINIO_HOSTS))
