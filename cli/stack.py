"""Starting and stopping the local stack: Redis, MinIO, the API, the relay and the workers.

`imgpipe up` and the test suite use the same code, so what the tests run is what a developer
runs. Each process writes its log to <var>/log/<name>.log and its pid to <var>/run/<name>.pid,
which is how `imgpipe down` finds a stack left in the background. PostgresServer is a
throwaway PostgreSQL for the tests and the benchmark, whose stacks each get a database in it.
"""

from __future__ import annotations

import glob
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from imgpipe import uploads
from imgpipe.processes import process_stat
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from notify_config.definition import minio_server_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_ORDER = ("redis", "minio", "api", "relay", "worker")
RESTART_DELAYS = (1, 2, 4, 8, 16, 30)  # seconds before starting again a process that keeps dying
STEADY = 60.0  # seconds up after which a process counts as healthy again
log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """Something the stack needs is missing or would not start; the message says what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_of(url: str, default: int) -> int:
    return urlsplit(url).port or default


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redis_quote(value: str) -> str:
    """A value as a double-quoted string of Redis' configuration file."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def redis_auth_config(username: str, password: str) -> str:
    """Redis configuration lines that make every client log in as REDIS_URL does: the default
    user's password, or, for a URL that names an ACL user, that user alone."""
    if not password:
        return ""
    if username in ("", "default"):
        return f"requirepass {redis_quote(password)}\n"
    return f"user default off\nuser {redis_quote(username)} on {redis_quote('>' + password)} ~* &* +@all\n"


def find_minio() -> str:
    # MINIO_BIN is where this machine keeps a tool of the local stack, like PATH for redis-server:
    # no imgpipe process reads it, so it is no Settings field.
    candidates = [os.environ.get("MINIO_BIN"), str(PROJECT_ROOT / ".tools" / "bin" / "minio"), shutil.which("minio")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise StackError("no MinIO server found: run `make install` (it builds one with Go) or set MINIO_BIN")


def find_redis() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)
    if not found:
        raise StackError("no redis-server found: run `make install` or `apt-get install redis-server`")
    return found


def find_postgres() -> Path:
    """The directory of PostgreSQL's server programs, which Debian keeps off PATH
    (/usr/lib/postgresql/<version>/bin); the newest version when there are several."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).parent] if on_path else []
    candidates += [Path(found) for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                   key=lambda path: int(Path(path).parent.name), reverse=True)]
    for candidate in candidates:
        if os.access(candidate / "initdb", os.X_OK) and os.access(candidate / "postgres", os.X_OK):
            return candidate
    raise StackError("no PostgreSQL server found: run `make install` or `apt-get install postgresql`")


def wait_until(check, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with status {process.returncode}{_log_tail(log)}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s{_log_tail(log)}")


def _log_tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = log.read_text(errors="replace").splitlines()[-15:]
    return f"; last lines of {log}:\n" + "\n".join(lines)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return response.status == 200


@dataclass
class Stack:
    """One local stack. Ports come from the settings' URLs; api_port is where gunicorn listens."""

    settings: Settings
    var_dir: Path
    api_port: int = 8000
    api_workers: int = 2
    workers: int = 1
    minio_console_port: int | None = None
    minio_queue_dir: bool = False
    # Durable by default, by measurement (docs/design/durability.md): Redis keeps an append-only file
    # (fsync every second) and MinIO hands each event to Redis before it answers the PUT.
    redis_appendonly: bool = True
    minio_sync_events: bool = True
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self):
        self.var_dir = Path(self.var_dir).resolve()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, process: str | None = None) -> dict[str, str]:
        """The environment of a process of the stack: the api, the relay and the workers get the keys
        of their own store identities only (imgpipe.store_identities.PROCESS_IDENTITIES)."""
        everything = self.settings.to_env()
        own = self.settings.to_env(process) if process else everything
        # PATH, HOME, locale and the like pass through: they are the machine's, not imgpipe's
        # settings. Every setting comes from self.settings, so a process never sees a variable its
        # to_env(process) left out (a worker inherits no root keys from the caller's shell).
        inherited = {name: value for name, value in os.environ.items() if name not in everything}
        return {**inherited, **own, "PYTHONUNBUFFERED": "1"}

    def path(self, *parts: str) -> Path:
        target = self.var_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def directory(self, *parts: str) -> Path:
        target = self.var_dir.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.path("log", f"{name}.log")
        with open(log, "ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env or self.env(), cwd=PROJECT_ROOT, start_new_session=True)
        self.processes[name] = process
        self.path("run", f"{name}.pid").write_text(str(process.pid))
        return process

    def start_redis(self) -> None:
        """Redis on REDIS_URL's address, asking for the password in REDIS_URL. Anything but
        loopback needs one: whoever can write to Redis decides what the workers do."""
        port = port_of(self.settings.redis_url, 6379)
        host = self.settings.redis_host
        password = self.settings.redis_password
        if not password and not is_loopback(host):
            raise StackError(f"Redis would listen on {host} without a password: put one in REDIS_URL"
                             " (redis://:<password>@host:port/0), or use 127.0.0.1")
        # The password goes in a file only this user can read, not on a command line anyone can.
        config = self.path("redis", "auth.conf")
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(redis_auth_config(self.settings.redis_username, password))
        process = self.spawn("redis", [
            find_redis(), str(config), "--port", str(port), "--bind", "127.0.0.1" if host == "localhost" else host,
            "--save", "",
            "--appendonly", "yes" if self.redis_appendonly else "no", "--appendfsync", "everysec",
            "--dir", str(self.directory("redis")), "--daemonize", "no", "--protected-mode", "yes"])
        client = redis_client(self.settings, "probe")
        wait_until(client.ping, 20, "redis-server", process, self.path("log", "redis.log"))

    def start_minio(self) -> None:
        port = port_of(self.settings.s3_endpoint_url, 9000)
        env = {
            **self.env(),
            "MINIO_ROOT_USER": self.settings.s3_access_key,
            "MINIO_ROOT_PASSWORD": self.settings.s3_secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "on" if self.minio_console_port else "off",
            **minio_server_env(
                self.settings.redis_address, self.settings.events_key, self.settings.redis_password,
                queue_dir=str(self.directory("minio", "events-queue")) if self.minio_queue_dir else "",
                sync_events=self.minio_sync_events, redis_user=self.settings.redis_username),
        }
        argv = [find_minio(), "server", str(self.directory("minio", "data")), "--address", f"127.0.0.1:{port}", "--quiet"]
        if self.minio_console_port:
            argv += ["--console-address", f"127.0.0.1:{self.minio_console_port}"]
        process = self.spawn("minio", argv, env)
        ready = f"http://127.0.0.1:{port}/minio/health/ready"
        wait_until(lambda: _http_ok(ready), 60, "MinIO", process, self.path("log", "minio.log"))

    def migrate_database(self) -> list[uploads.Migration]:
        """What `imgpipe setup` does to the database, so a fresh stack needs no step by hand."""
        database = uploads.connect(self.settings.database)
        try:
            return uploads.ensure_schema(database)
        finally:
            database.close()

    def apply_config(self) -> list[str]:
        """What `imgpipe setup` does to the store: the bucket, its notification and the store identities."""
        from notify_config.apply import apply
        from notify_config.definition import public_prefixes
        from notify_config.identities import apply_identities
        from imgpipe.storage import Storage
        from imgpipe.store_identities import ROOT
        return [*apply(Storage(self.settings, ROOT).client, self.settings.s3_bucket_name,
                       public_prefixes=public_prefixes(self.settings.delivery, self.settings.derivative_presets.names)),
                *apply_identities(self.settings)]

    def start_api(self) -> None:
        process = self.spawn("api", [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.api_port}",
            "--workers", str(self.api_workers), "--graceful-timeout", "5", "api.wsgi:app"], self.env("api"))
        wait_until(lambda: _http_ok(f"{self.api_url}/healthz"), 30, "the API", process, self.path("log", "api.log"))

    def login_link(self) -> str:
        """A one-time link that logs a browser in to the page and the dashboard (api.login)."""
        from api.login import issue_login_code, login_url

        connection = redis_client(self.settings, "cli")
        try:
            return login_url(self.api_url, issue_login_code(connection))
        finally:
            connection.close()

    def start_relay(self) -> None:
        self.spawn("relay", [sys.executable, "-m", "cli.main", "relay"], self.env("relay"))

    def start_worker(self, index: int = 0) -> None:
        self.spawn(f"worker-{index}" if index else "worker", [sys.executable, "-m", "cli.main", "worker"],
                   self.env("worker"))

    def start_named(self, name: str) -> None:
        """Start one of the stack's processes by the name it runs under (worker-2 is start_worker(2))."""
        base, _, index = name.partition("-")
        if base == "worker":
            self.start_worker(int(index or 0))
        else:
            {"redis": self.start_redis, "minio": self.start_minio, "api": self.start_api,
             "relay": self.start_relay}[base]()

    def keep_running(self, poll: float = 0.5) -> None:
        """Watch the processes until interrupted (Ctrl-C, or SIGTERM from `imgpipe down`), and
        start again any that exits unasked. The delay before a restart doubles while a process
        keeps dying (1 s up to RESTART_DELAYS[-1]) and starts over once it has stayed up for
        STEADY seconds, so a process that cannot start does not spin."""
        restarts: dict[str, Restart] = {}
        while True:
            now = time.monotonic()
            for name, process in sorted(self.processes.items(), key=lambda item: START_ORDER.index(_base(item[0]))):
                restart = restarts.setdefault(name, Restart(started=now))
                if process.poll() is None:
                    if now - restart.started >= STEADY:
                        restart.failures = 0
                    continue
                if restart.due is None:
                    restart.due = now + RESTART_DELAYS[min(restart.failures, len(RESTART_DELAYS) - 1)]
                    restart.failures += 1
                    log.warning("%s exited unasked (%s); starting it again in %.0f s (restart %s, log %s)",
                                name, _how_it_ended(process.returncode), restart.due - now, restart.failures,
                                self.path("log", f"{name}.log"))
                if now >= restart.due:
                    restart.due = None
                    restart.started = time.monotonic()
                    try:
                        self.start_named(name)
                        log.info("%s started again (pid %s)", name, self.processes[name].pid)
                    except StackError as error:
                        log.warning("%s did not start again: %s", name, error)
            time.sleep(poll)

    def start(self) -> None:
        """Start everything in order; on any failure stop what did start and raise."""
        try:
            self.migrate_database()
            self.start_redis()
            self.start_minio()
            self.apply_config()
            self.start_api()
            self.start_relay()
            for index in range(self.workers):
                self.start_worker(index)
        except BaseException:
            self.stop()
            raise

    def stop_process(self, name: str, timeout: float = 10.0) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            terminate(process.pid, timeout, process)
        self.path("run", f"{name}.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop in the reverse of start order: consumers before the services they use."""
        for name in sorted(self.processes, key=_stop_rank):
            self.stop_process(name)


@dataclass
class Restart:
    """How one process of a kept-running stack has fared: when it was last started, how many
    times in a row it died before STEADY seconds, and when it is due to start again."""

    started: float
    failures: int = 0
    due: float | None = None


def _base(name: str) -> str:
    return name.split("-")[0]


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: initdb into a fresh temporary directory, one address and
    port, a user with a password (connections use the same URL form as production), and a
    database per stack from create_database. stop() removes every trace of it.

    PostgreSQL refuses to run as root, so under root its programs run as the `postgres` user,
    who owns the directory.
    """

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    user: str = "imgpipe"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    directory: Path | None = None
    process: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="imgpipe-postgres-"))
        log = self.directory / "postgres.log"
        try:
            data = init_postgres_cluster(self.directory, self.user, self.password)
            with open(log, "ab") as out:
                self.process = subprocess.Popen(
                    [*as_postgres_owner(), *postgres_server_command(data, self.host, self.port)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            wait_until(self._answers, 30, "PostgreSQL", self.process, log)
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        with psycopg.connect(self.url(), connect_timeout=1):
            return True

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT): the data is thrown away, so no final checkpoint
        writes it out first, and clients are disconnected rather than waited for."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def as_postgres_owner() -> list[str]:
    """The prefix that runs a PostgreSQL program as the `postgres` user under root, which
    PostgreSQL refuses to run as; nothing otherwise."""
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"] if os.geteuid() == 0 else []


def init_postgres_cluster(directory: Path, user: str, password: str) -> Path:
    """initdb into `directory`/data with one superuser who logs in over TCP with `password`;
    returns the data directory. Under root `directory` is handed to the `postgres` user first."""
    password_file = directory / "password"
    password_file.write_text(password)
    if os.geteuid() == 0:
        for path in (directory, password_file):
            shutil.chown(path, "postgres", "postgres")
    data = directory / "data"
    with open(directory / "postgres.log", "ab") as out:
        subprocess.run([*as_postgres_owner(), str(find_postgres() / "initdb"), "--pgdata", str(data), "--username", user,
                        "--pwfile", str(password_file), "--auth-local=trust", "--auth-host=scram-sha-256",
                        "--encoding=UTF8", "--no-locale", "--no-sync"],
                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True, timeout=60)
    return data


def postgres_server_command(data: Path, host: str, port: int) -> list[str]:
    """The server on one address and port, no Unix socket.

    synchronous_commit=off: a commit returns before its WAL is on disk, which an OS crash (not a
    process crash) can lose; the same promise as the SQLite file's synchronous=NORMAL.
    """
    return [str(find_postgres() / "postgres"), "-D", str(data), "-c", f"listen_addresses={host}", "-p", str(port),
            "-c", "unix_socket_directories=", "-c", "synchronous_commit=off"]


def _stop_rank(name: str) -> int:
    base = _base(name)
    return -START_ORDER.index(base) if base in START_ORDER else -len(START_ORDER)


def terminate(pid: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    """SIGTERM the process (its whole group when it leads one, as the stack's processes do),
    then SIGKILL it if it has not gone within timeout."""
    try:
        kill = os.killpg if os.getpgid(pid) == pid else os.kill
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return
        elif not _alive(pid):
            return
        time.sleep(0.05)
    try:
        kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return not process_stat(pid).exited
    except OSError:
        return True


def stop_recorded(var_dir: Path) -> list[str]:
    """Stop a stack from its pid files (one started in the background or by another shell)."""
    run = Path(var_dir) / "run"
    stopped = []
    pidfiles = {path.stem: path for path in run.glob("*.pid")} if run.exists() else {}
    for name in sorted(pidfiles, key=_stop_rank):
        try:
            pid = int(pidfiles[name].read_text().strip())
        except (ValueError, FileNotFoundError):  # unreadable, or removed by `imgpipe up` stopping its stack
            pid = None
        if pid and _alive(pid):
            terminate(pid, 10.0)
            stopped.append(name)
        pidfiles[name].unlink(missing_ok=True)
    return stopped
