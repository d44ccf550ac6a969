"""A real stack for the integration tests: Redis, MinIO, gunicorn, the relay and a worker,
started by the project's own code on free loopback ports, once per test session."""

from __future__ import annotations

import subprocess

import pytest

from imgpipe.settings import Settings
from imgpipe.stack import PROJECT_ROOT, Stack, StackError, find_minio, find_redis, free_port
from pipeline_client import Api


def ensure_servers() -> None:
    """Install Redis and build MinIO when they are missing, exactly as `make install` does."""
    for finder, script in ((find_redis, "install_redis.sh"), (find_minio, "build_minio.sh")):
        try:
            finder()
        except StackError:
            subprocess.run([str(PROJECT_ROOT / "scripts" / script)], check=True)


def stack_settings(tmp_dir, **overrides) -> Settings:
    values = dict(
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        database_path=str(tmp_dir / "imgpipe.db"),
        sweep_interval=0.5,
        sweep_min_age=2.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    ensure_servers()
    var_dir = tmp_path_factory.mktemp("stack")
    running = Stack(stack_settings(var_dir), var_dir, api_port=free_port(), workers=1)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def api(stack):
    return Api(stack.api_url)
