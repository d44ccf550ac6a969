"""An RQ worker the benchmark runs in place of the one `imgpipe worker` starts, to price what
a fork per job would cost: RQ's default Worker forks a work horse for each job, which makes its
clients and connections afresh and touches fresh memory, where imgpipe's worker runs every job
in one warm process.

Run as `python -m bench.worker_variants forking`.
"""

from __future__ import annotations

import sys

from rq import Worker

import processor.tasks  # noqa: F401  loaded once before any fork, as in `imgpipe worker`
from imgpipe.logs import configure_logging
from imgpipe.queues import SERIALIZER, make_queue
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from processor.resources import use_settings

KINDS = {"forking": Worker}


def main(kind: str) -> None:
    settings = Settings.from_env()
    configure_logging(settings)
    use_settings(settings)
    connection = redis_client(settings, "worker")
    worker = KINDS[kind]([make_queue(connection, settings)], connection=connection, maintenance_interval=30,
                         serializer=SERIALIZER)
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main(sys.argv[1])
