"""imgpipe on simulated hosts: four MinIO nodes, Redis, PostgreSQL, the API on two hosts, the
relay, and workers on two hosts, each process started in its host's namespace.

The servers find MinIO by one name, minio.cluster.test, that lists all four nodes, as a DNS
name in front of a distributed MinIO would: each process's /etc/hosts is a file of the
cluster's own, bind-mounted for that process alone (`ip netns exec` gives every process a
mount namespace of its own). A client library tries a name's addresses in turn, so a dead
node is passed over. Upload URLs are signed for that name, and a client may PUT to any node.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from rq import Worker

from cli.stack import init_postgres_cluster, postgres_server_command, redis_auth_config
from imgpipe import uploads
from imgpipe.queues import SERIALIZER, fetch_job, make_queue
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from imgpipe.storage import Storage
from imgpipe.store_identities import PROCESS_IDENTITIES, ROOT
from netns import NAME_ROOT, Network
from notify_config.definition import minio_server_env
from polling import eventually
from processor.jobs import job_id_for
from stacks import PROJECT_ROOT, ensure_servers, find_minio, find_redis, store_keys

SUBNET = "10.213.7"
MINIO_HOSTS = ("minio1", "minio2", "minio3", "minio4")
API_HOSTS = ("api1", "api2")
WORKER_HOSTS = ("worker1", "worker2")
HOSTS = {
    **{host: f"{SUBNET}.{11 + index}" for index, host in enumerate(MINIO_HOSTS)},
    "redis": f"{SUBNET}.21",
    "postgres": f"{SUBNET}.22",
    **{host: f"{SUBNET}.{31 + index}" for index, host in enumerate(API_HOSTS)},
    **{host: f"{SUBNET}.{41 + index}" for index, host in enumerate(WORKER_HOSTS)},
    "client": f"{SUBNET}.50",
}
MINIO_NAME = "minio.cluster.test"
MINIO_PORT, API_PORT, REDIS_PORT, POSTGRES_PORT = 9000, 8000, 6379, 5432
DATABASE_USER, DATABASE_NAME = "imgpipe", "imgpipe"
START_TIMEOUT = 90.0
# Give every process its own /etc/hosts: "$0" is the cluster's hosts file, "$@" the command.
WITH_HOSTS_FILE = 'mount --bind "$0" /etc/hosts && exec "$@"'


class ClusterError(RuntimeError):
    """A process would not start or become ready; the message carries the end of its log."""


def server_settings(database_password: str, redis_password: str) -> Settings:
    """What the API, the relay and the workers are configured with, on every host alike."""
    return Settings(
        **store_keys(),
        s3_endpoint_url=f"http://{MINIO_NAME}:{MINIO_PORT}",
        redis_url=f"redis://:{redis_password}@{HOSTS['redis']}:{REDIS_PORT}/0",
        database_url=postgres_url(database_password, DATABASE_NAME),
        sweep_interval=1.0,
        sweep_min_age=3.0,
        processing_deadline=8,
        # The APIs listen beyond loopback, so they need a token, and answer to their addresses by name.
        api_token=secrets.token_urlsafe(24),
        allowed_hosts=",".join(HOSTS[host] for host in API_HOSTS),
    )


def postgres_url(password: str, database: str) -> str:
    return f"postgresql://{DATABASE_USER}:{password}@{HOSTS['postgres']}:{POSTGRES_PORT}/{database}"


@dataclass
class Cluster:
    network: Network
    var_dir: Path
    database_password: str = field(default_factory=lambda: secrets.token_hex(12))
    redis_password: str = field(default_factory=lambda: secrets.token_hex(16))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    postgres_dir: Path | None = None

    def __post_init__(self):
        self.var_dir = Path(self.var_dir)
        self.settings = server_settings(self.database_password, self.redis_password)
        self.hosts_file = self.var_dir / "hosts"
        lines = ["127.0.0.1 localhost"] + [f"{HOSTS[host]} {MINIO_NAME}" for host in MINIO_HOSTS]
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.hosts_file.write_text("\n".join(lines) + "\n")

    # Where things are, as the test (on the client host) reaches them.
    def address(self, host: str) -> str:
        return self.network.hosts[host]

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{self.address(host)}:{API_PORT}" for host in API_HOSTS]

    def node_settings(self, node: str) -> Settings:
        return dataclasses.replace(self.settings, s3_endpoint_url=f"http://{self.address(node)}:{MINIO_PORT}")

    def node_storage(self, node: str, timeout: float = 10.0) -> Storage:
        """A storage client that talks to this one node (addressed directly, not by the shared name)."""
        return Storage(self.node_settings(node), ROOT, timeout=timeout, retries=0)

    def database(self):
        return uploads.connect(self.settings.database)

    @functools.cached_property
    def redis(self) -> redis.Redis:
        return redis_client(self.settings, "cli")

    def env(self, process: str | None = None) -> dict[str, str]:
        """What a process is started with: the api, relay and workers get only their own store keys."""
        everything = self.settings.to_env()
        inherited = {name: value for name, value in os.environ.items() if name not in everything}
        return {**inherited, **self.settings.to_env(process), "PYTHONUNBUFFERED": "1"}

    def log(self, key: str) -> Path:
        path = self.var_dir / "log" / f"{key.replace('/', '-')}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def command_on(self, host: str, argv: list[str], user: str | None = None) -> list[str]:
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
        return ["ip", "netns", "exec", self.network.namespace(host), "sh", "-c", WITH_HOSTS_FILE,
                str(self.hosts_file), *as_user, *argv]

    def spawn(self, host: str, name: str, argv: list[str], env: dict[str, str] | None = None,
              user: str | None = None) -> subprocess.Popen:
        """Start a long-running process on the host, in a session of its own, its output in a log."""
        key = f"{host}/{name}"
        if env is None:
            env = self.env(name if name in PROCESS_IDENTITIES else None)
        with open(self.log(key), "ab") as out:
            process = subprocess.Popen(self.command_on(host, argv, user), stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT,
                                       start_new_session=True)
        self.processes[key] = process
        return process

    def run_on(self, host: str, argv: list[str], timeout: float) -> str:
        result = subprocess.run(self.command_on(host, argv), capture_output=True, text=True,
                                env=self.env(), cwd=PROJECT_ROOT, timeout=timeout)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} on {host} exited {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout

    def wait_for(self, check, what: str, keys: list[str], timeout: float = START_TIMEOUT) -> None:
        """Until check() is true; fail at once, with its log, if one of these processes exits.
        An exception from check() is a server not up yet (connection refused, 503, ...)."""
        errors: list[Exception] = []

        def ready() -> bool:
            for key in keys:
                if self.processes[key].poll() is not None:
                    raise ClusterError(f"{key} exited with {self.processes[key].returncode} while waiting for"
                                       f" {what}:\n{self.log_tail(key)}")
            try:
                return bool(check())
            except Exception as error:
                errors[:] = [error]
                return False

        def how_it_stands() -> str:
            tails = "\n".join(self.log_tail(key) for key in keys)
            return f"{what} (last error: {errors[-1] if errors else None!r}):\n{tails}"

        eventually(ready, timeout, what=how_it_stands, interval=0.1)

    def log_tail(self, key: str, lines: int = 20) -> str:
        path = self.log(key)
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- {path}\n" + "\n".join(text)

    # Starting.
    def start(self) -> None:
        """Start every server, then the imgpipe processes; return once every one answers."""
        ensure_servers()
        started = time.monotonic()
        self.start_minio()
        self.start_redis()
        self.start_postgres()
        self.wait_for(self.redis.ping, "Redis", ["redis/redis-server"])
        self.wait_for(self.postgres_ready, "PostgreSQL", ["postgres/postgres"])
        with psycopg.connect(postgres_url(self.database_password, "postgres"), autocommit=True, connect_timeout=10) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        minio_keys = [f"{node}/minio" for node in MINIO_HOSTS]
        for node in MINIO_HOSTS:
            self.wait_for(lambda node=node: self.minio_health(node), f"MinIO on {node}", minio_keys)
        self.run_on("api1", [imgpipe_command(), "setup"], timeout=START_TIMEOUT)
        for host in API_HOSTS:
            self.spawn(host, "api", [sys.executable, "-m", "gunicorn", "--bind", f"{self.address(host)}:{API_PORT}",
                                     "--workers", "2", "--graceful-timeout", "2", "api.wsgi:app"])
        self.spawn("api1", "relay", [imgpipe_command(), "relay"])
        for host in WORKER_HOSTS:
            self.spawn(host, "worker", [imgpipe_command(), "worker"])
        for node in MINIO_HOSTS:
            self.wait_for(lambda node=node: self.answers_signed_put(node), f"a signed PUT on {node}", minio_keys)
        for host, url in zip(API_HOSTS, self.api_urls):
            self.wait_for(lambda url=url: _http_ok(f"{url}/healthz"), f"the API on {host}", [f"{host}/api"])
        worker_keys = [f"{host}/worker" for host in WORKER_HOSTS]
        self.wait_for(lambda: all(self.rq_workers().values()), "an RQ worker on each worker host", worker_keys)
        self.started_in = time.monotonic() - started

    def start_redis(self) -> None:
        """Redis for every host of the subnet, so it asks for a password, kept out of its command line."""
        directory = self.var_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "auth.conf"
        config.touch(mode=0o600)
        config.write_text(redis_auth_config(self.settings.redis_username, self.settings.redis_password))
        self.spawn("redis", "redis-server", [
            find_redis(), str(config), "--bind", self.address("redis"), "--port", str(REDIS_PORT), "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--dir", str(directory)])

    def start_postgres(self) -> None:
        """A throwaway cluster run by the postgres user, in a folder of its own outside the test's
        (which that user cannot enter). Password login, from the cluster's subnet only."""
        self.postgres_dir = Path(tempfile.mkdtemp(prefix=f"{self.network.prefix}-postgres-"))
        data = init_postgres_cluster(self.postgres_dir, DATABASE_USER, self.database_password)
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 scram-sha-256\n")
        self.spawn("postgres", "postgres", postgres_server_command(data, self.address("postgres"), POSTGRES_PORT),
                   user="postgres")

    def postgres_ready(self) -> bool:
        with psycopg.connect(postgres_url(self.database_password, "postgres"), connect_timeout=1):
            return True

    def start_minio(self) -> None:
        """One drive per node, the same command and root credentials on every node."""
        drives = [f"http://{self.address(node)}:{MINIO_PORT}{self.var_dir / node / 'data'}" for node in MINIO_HOSTS]
        env = {
            **self.env(),
            "MINIO_ROOT_USER": self.settings.s3_access_key,
            "MINIO_ROOT_PASSWORD": self.settings.s3_secret_key,
            "MINIO_CI_CD": "on",  # the drives are folders on the root disk, which MinIO refuses otherwise
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
            **minio_server_env(self.settings.redis_address, self.settings.events_key, self.settings.redis_password,
                               redis_user=self.settings.redis_username),
        }
        for node in MINIO_HOSTS:
            (self.var_dir / node / "data").mkdir(parents=True, exist_ok=True)
            self.spawn(node, "minio", [find_minio(), "server", "--quiet", "--address",
                                       f"{self.address(node)}:{MINIO_PORT}", *drives], env=env)

    def minio_health(self, node: str) -> bool:
        return _http_ok(f"http://{self.address(node)}:{MINIO_PORT}/minio/health/cluster")

    def answers_signed_put(self, node: str) -> bool:
        """A freshly healthy cluster may still hold a first write for a minute: write and delete a
        probe (outside originals/, so no event) on the node itself."""
        storage = self.node_storage(node, timeout=5)
        key = f"probes/{node}"
        storage.write(key, b"probe", "text/plain")
        storage.client.remove_object(storage.bucket, key)
        return True

    # Looking at the running cluster.
    def rq_workers(self) -> dict[str, list[Worker]]:
        """The RQ workers registered from each worker host (told apart by their pids: every host
        has the machine's hostname)."""
        pids = {host: self.network.pids(host) for host in WORKER_HOSTS}
        found: dict[str, list[Worker]] = {host: [] for host in WORKER_HOSTS}
        for worker in Worker.all(connection=self.redis, serializer=SERIALIZER):
            for host, host_pids in pids.items():
                if worker.pid in host_pids:
                    found[host].append(worker)
        return found

    def processed_on(self, host: str, upload_ids: list[str]) -> list[str]:
        """Those of the uploads whose last processing job ran on the host: `imgpipe worker`
        names its RQ workers <hostname>.<its own pid>.<n>, and RQ keeps a finished job's worker
        name while it keeps the job's result."""
        pids = self.network.pids(host)
        connection = self.redis
        found = []
        for upload_id in upload_ids:
            job = fetch_job(connection, job_id_for(upload_id))
            if job.worker_name and int(job.worker_name.rsplit(".", 2)[1]) in pids:
                found.append(upload_id)
        return found

    def queued_jobs(self) -> int:
        return make_queue(self.redis, self.settings).count

    def jobs_held_on(self, host: str) -> list[str]:
        return [job_id for worker in self.rq_workers()[host] if (job_id := worker.get_current_job_id())]

    def stop(self) -> None:
        """Kill every process on every host, the servers' clients first; the namespaces
        themselves go with the network."""
        for host in sorted(self.network.hosts, key=lambda host: host not in API_HOSTS + WORKER_HOSTS):
            self.network.kill_host(host)
        for process in self.processes.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.postgres_dir is not None:
            shutil.rmtree(self.postgres_dir, ignore_errors=True)


def imgpipe_command() -> str:
    return str(Path(sys.executable).with_name("imgpipe"))


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def remove_leftover_folders() -> None:
    """PostgreSQL folders of runs that were killed before they could clean up."""
    for path in Path(tempfile.gettempdir()).glob(f"{NAME_ROOT}*-postgres-*"):
        pid = path.name[len(NAME_ROOT):].split("-")[0].rstrip("abcdefghijklmnopqrstuvwxyz")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)
