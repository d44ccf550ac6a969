"""A real stack for the benchmark, started by imgpipe's own code on free loopback ports in a
temporary directory, exactly as the integration tests start theirs, plus the variants the
benchmark compares against what ships (forking workers, other gunicorn settings)."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from imgpipe.settings import Settings
from cli.stack import PROJECT_ROOT, PostgresServer, Stack, free_port, wait_until

__all__ = ["PROJECT_ROOT", "PostgresServer", "new_stack", "start_stack", "use_worker_variant", "start_api_variant",
           "remove_stack"]


def start_stack(workers: int = 2, database_url: str = "", **overrides) -> Stack:
    """A stack on its own SQLite file, or on the database at database_url, started; `overrides`
    are other settings."""
    stack = new_stack(workers, database_url, **overrides)
    stack.start()
    return stack


def new_stack(workers: int = 2, database_url: str = "", parent: str | None = None, **overrides) -> Stack:
    """start_stack's stack, not yet started, in a new directory under `parent` (by default the
    system's temporary directory)."""
    var_dir = Path(tempfile.mkdtemp(prefix="imgpipe-bench-", dir=parent))
    settings = Settings(
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        database_path=str(var_dir / "imgpipe.db"),
        database_url=database_url,
        api_token=secrets.token_urlsafe(24),  # as every install has one; the clients send it
        **overrides,
    )
    return Stack(settings, var_dir, api_port=free_port(), workers=workers)


def remove_stack(stack: Stack) -> None:
    stack.stop()
    shutil.rmtree(stack.var_dir, ignore_errors=True)


def worker_names(stack: Stack) -> list[str]:
    return [name for name in stack.processes if name.startswith("worker")]


def use_worker_variant(stack: Stack, kind: str, count: int) -> None:
    """Replace the stack's workers by `count` of a kind from bench.worker_variants, or of
    `imgpipe worker` itself when kind is "shipped" ("moderation": with IMGPIPE_MODERATION=flag)."""
    for name in worker_names(stack):
        stack.stop_process(name)
    for index in range(count):
        if kind == "shipped":
            stack.start_worker(index)
        elif kind == "moderation":
            stack.spawn(f"worker-{kind}-{index}", [sys.executable, "-m", "cli.main", "worker"],
                        env={**stack.env(), "IMGPIPE_MODERATION": "flag"})
        else:
            stack.spawn(f"worker-{kind}-{index}", [sys.executable, "-m", "bench.worker_variants", kind])


def start_api_variant(stack: Stack, name: str, gunicorn_args: list[str], app: str = "api.wsgi:app",
                      env: dict[str, str] | None = None) -> str:
    """Another gunicorn serving the app (by default the same one) with the same settings, plus
    `env`, on its own port; returns its URL."""
    port = free_port()
    process = stack.spawn(name, [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                                 "--graceful-timeout", "5", *gunicorn_args, app], {**stack.env(), **(env or {})})
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return response.status == 200

    wait_until(healthy, 30, f"gunicorn {name}", process, stack.path("log", f"{name}.log"))
    return url
