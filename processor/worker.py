"""Running RQ workers that outlive Redis outages.

RQ's worker quits when Redis drops mid-job (it cannot record the job's end). A worker that is
not told to stop is therefore started again, so a Redis restart never leaves the queue without
a consumer; the rows themselves are made whole by the relay's sweeper.
"""

from __future__ import annotations

import logging
import time

import redis
from rq import Worker

from imgpipe.settings import Settings
from processor.jobs import make_queue, make_webhook_queue

log = logging.getLogger(__name__)
RESTART_DELAY = 1.0


class ImagesWorker(Worker):
    """An RQ worker that remembers whether it was asked to stop (SIGTERM/SIGINT)."""

    stop_was_requested = False

    def request_stop(self, signum, frame):
        self.stop_was_requested = True
        super().request_stop(signum, frame)


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    connection = redis.Redis.from_url(settings.redis_url, health_check_interval=15)
    while True:
        worker = None
        try:
            queues = [make_queue(connection, settings), make_webhook_queue(connection, settings)]  # images first
            worker = ImagesWorker(queues, connection=connection, maintenance_interval=30)
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("worker lost Redis: %s", error)
        if burst or (worker is not None and worker.stop_was_requested):
            return
        log.warning("worker stopped without being asked to; starting a new one in %.0f s", RESTART_DELAY)
        time.sleep(RESTART_DELAY)
