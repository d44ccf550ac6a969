"""An RQ worker the benchmark runs in place of the one `imgpipe worker` starts, to price what
the forking worker costs per job: RQ's SimpleWorker runs each job in the worker process
itself, so there is no fork, and the clients and connections made by the first job are
reused by the next.

Run as `python -m bench.worker_variants simple`.
"""

from __future__ import annotations

import sys

import redis
from rq import SimpleWorker

import processor.tasks  # noqa: F401  loaded once, as in `imgpipe worker`
from imgpipe.logs import configure_logging
from imgpipe.settings import Settings
from processor.jobs import make_queue

KINDS = {"simple": SimpleWorker}


def main(kind: str) -> None:
    configure_logging()
    settings = Settings.from_env()
    connection = redis.Redis.from_url(settings.redis_url)
    worker = KINDS[kind]([make_queue(connection, settings)], connection=connection, maintenance_interval=30)
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main(sys.argv[1])
