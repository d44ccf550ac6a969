"""Real stacks for tests: Redis, MinIO, gunicorn, the relay and workers, started by the
project's own code (cli.stack) on free loopback ports, on either database engine."""

from __future__ import annotations

import contextlib
import itertools
import secrets
import subprocess
from pathlib import Path

from imgpipe.settings import RATE_LIMITS, Settings
from imgpipe.engines import ENGINES, SQLITE
from imgpipe.store_identities import SERVICE_ROLES
from cli.stack import PROJECT_ROOT, PostgresServer, Stack, StackError, find_minio, find_postgres, find_redis, free_port

__all__ = ["ENGINES", "Databases", "running_stack", "stack_settings"]


def ensure_servers() -> None:
    """Install Redis and build MinIO when they are missing, exactly as `make install` does."""
    for finder, script in ((find_redis, "install_redis.sh"), (find_minio, "build_minio.sh")):
        try:
            finder()
        except StackError:
            subprocess.run([str(PROJECT_ROOT / "scripts" / script)], check=True)


class Databases:
    """Fresh databases on either engine: for SQLite none is made (each stack keeps its own file
    in its directory); for PostgreSQL one throwaway server, started at the first request and
    shared by the session, gets a new database per request."""

    def __init__(self):
        self.server: PostgresServer | None = None
        self.names = itertools.count(1)

    def url(self, engine: str) -> str:
        """A DATABASE_URL for a new, empty database; "" (the default file) for SQLite."""
        if engine == SQLITE:
            return ""
        if self.server is None:
            try:
                find_postgres()
            except StackError:
                subprocess.run([str(PROJECT_ROOT / "scripts" / "install_postgresql.sh")], check=True)
            self.server = PostgresServer()
            self.server.start()
        return self.server.create_database(f"imgpipe_{next(self.names)}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def store_keys() -> dict[str, str]:
    """Random keys for the store's root account and every service identity, as a deployment has."""
    keys = {"s3_access_key": f"root-{secrets.token_hex(6)}", "s3_secret_key": secrets.token_urlsafe(24)}
    for role in SERVICE_ROLES:
        keys[f"s3_{role}_access_key"] = f"{role}-{secrets.token_hex(6)}"
        keys[f"s3_{role}_secret_key"] = secrets.token_urlsafe(24)
    return keys


# The rate limits are tried in test_limits.py with limits of its own; elsewhere a test's many
# refusals (and its many clients, all on 127.0.0.1) must not meet them.
TEST_RATE_LIMITS = {name: "100000 per minute" for name in RATE_LIMITS if name != "rate_limit_api_token"}


def stack_settings(var_dir: Path, **overrides) -> Settings:
    values = dict(
        **store_keys(),
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        redis_url=f"redis://:{secrets.token_hex(16)}@127.0.0.1:{free_port()}/0",
        database_path=str(var_dir / "imgpipe.db"),
        sweep_interval=0.5,
        sweep_min_age=2.0,
        api_token=secrets.token_urlsafe(24),  # every client a test makes sends it
        **TEST_RATE_LIMITS,
    )
    values.update(overrides)
    return Settings(**values)


def children_of(pid: int) -> list[int]:
    """pid's child processes, from /proc. A thread can exit between listing the tasks and
    reading its children, so a task that is gone is skipped."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """pid and every process below it, from /proc."""
    found = [pid]
    for child in children_of(pid):
        found += process_tree(child)
    return found


@contextlib.contextmanager
def running_stack(var_dir: Path, *, workers: int = 1, minio_queue_dir: bool = False, api_port: int | None = None,
                  **overrides):
    """`api_port` when something in front of the API (a proxy) must know it before the stack starts."""
    ensure_servers()
    stack = Stack(stack_settings(var_dir, **overrides), var_dir, api_port=api_port or free_port(), workers=workers,
                  minio_queue_dir=minio_queue_dir)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
