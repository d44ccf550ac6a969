"""The replaced service's processes, started and stopped by the project's own stack code: a
Redis of its own (its Celery broker, on a free loopback port, with a password), its web app
under gunicorn and its Celery worker, all writing to the MinIO of an imgpipe bench stack, in a
bucket of their own with no notification on it."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.old_design import records
from bench.old_design.config import Config
from cli.stack import Stack, free_port, wait_until
from imgpipe.settings import Settings

BUCKET = "old-design"


@dataclass
class OldService:
    stack: Stack  # only its process handling and its Redis are used
    config: Config
    api_url: str

    def stop(self) -> None:
        self.stack.stop()
        shutil.rmtree(self.stack.var_dir, ignore_errors=True)


def start_old_service(imgpipe_stack: Stack, workers: int) -> OldService:
    """Its Redis without an append-only file, as Redis' defaults left the old service's broker."""
    var_dir = Path(tempfile.mkdtemp(prefix="imgpipe-bench-old-"))
    redis_url = f"redis://:{secrets.token_urlsafe(16)}@127.0.0.1:{free_port()}/0"
    own = Stack(Settings(redis_url=redis_url), var_dir, redis_appendonly=False)
    store = imgpipe_stack.settings
    config = Config(store.s3_endpoint_url, store.s3_access_key, store.s3_secret_key, BUCKET, redis_url,
                    str(var_dir / "old-design.db"))
    env = {**own.env(), **config.to_env()}
    try:
        own.start_redis()
        client = config.store()
        if not client.bucket_exists(BUCKET):
            client.make_bucket(BUCKET)
        records.create_schema(config.database_path)
        port = free_port()
        api = own.spawn("api", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                                "--graceful-timeout", "5", "bench.old_design.app:create_app()"], env)
        api_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(api_url), 30, "the old design's web app", api, own.path("log", "api.log"))
        worker_log = own.path("log", "worker.log")
        worker = own.spawn("worker", [sys.executable, "-m", "celery", "-A", "bench.old_design.tasks", "worker",
                                      "--pool", "prefork", "--concurrency", str(workers), "--loglevel", "INFO",
                                      "--hostname", "old-design@%h"], env)
        wait_until(lambda: " ready." in worker_log.read_text(errors="replace"), 60, "the old design's Celery worker",
                   worker, worker_log)
    except BaseException:
        own.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
        raise
    return OldService(own, config, api_url)


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
        return response.status == 200
