"""RQ workers the benchmark runs beside the one `imgpipe worker` starts, to price what the
forking worker costs per job:

- `warm-fork`: the same forking Worker, but the parent derives one small picture before it
  takes jobs, so lazily loaded state (Pillow's format plugins, codec tables, imgpipe's
  caches) is inherited by every forked job process instead of being rebuilt in each.
- `simple`: RQ's SimpleWorker, which runs each job in the worker process itself: no fork, and
  the clients and connections made by the first job are reused by the next.

Run as `python -m bench.worker_variants KIND`.
"""

from __future__ import annotations

import sys

import redis
from rq import SimpleWorker, Worker

import processor.tasks  # noqa: F401  loaded once, as in `imgpipe worker`
from imgpipe.logs import configure_logging
from imgpipe.settings import Settings
from processor.jobs import make_queue

KINDS = {"warm-fork": Worker, "simple": SimpleWorker}


def warm_up() -> None:
    from bench.inputs import photo_like_jpeg
    from processor.imaging import make_derivatives

    make_derivatives(photo_like_jpeg(64, 48))


def main(kind: str) -> None:
    configure_logging()
    if kind == "warm-fork":
        warm_up()
    settings = Settings.from_env()
    connection = redis.Redis.from_url(settings.redis_url)
    worker = KINDS[kind]([make_queue(connection, settings)], connection=connection, maintenance_interval=30)
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main(sys.argv[1])
