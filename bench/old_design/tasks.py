"""The replaced service's worker: one Celery task per upload (bench.old_design.job), run by
`celery -A bench.old_design.tasks worker --pool prefork --concurrency 2`."""

from __future__ import annotations

from functools import cache

from celery import Celery

from bench.old_design.config import Config
from bench.old_design.job import process_upload

CONFIG = Config.from_env()
# No result backend, as the old service had none: the row says how a task ended.
app = Celery("old_design", broker=CONFIG.redis_url)
app.conf.broker_connection_retry_on_startup = True


@cache
def store():
    """One client per process, made in the pool's child after the fork."""
    return CONFIG.store()


@app.task(name="old_design.make_derivatives")
def make_derivatives(upload_id: str, key: str) -> None:
    process_upload(CONFIG, store(), upload_id, key)
