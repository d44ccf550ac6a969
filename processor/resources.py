"""What jobs use in a worker process: made by its first job and reused by the next ones.

Made again in a forked child, which cannot share its parent's database connection or threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from redis import Redis
from rq import Queue

from imgpipe import db as uploads
from imgpipe.engines import Database
from imgpipe.keys import DERIVATIVES
from imgpipe.settings import Settings
from imgpipe.storage import Storage
from processor.jobs import make_webhook_queue


@dataclass
class Resources:
    settings: Settings
    db: Database
    storage: Storage
    writers: ThreadPoolExecutor
    webhooks: Queue
    pid: int


_resources: Resources | None = None


def resources() -> Resources:
    global _resources
    if _resources is None or _resources.pid != os.getpid():
        settings = Settings.from_env()
        db = uploads.connect(settings.database)
        writers = ThreadPoolExecutor(max_workers=len(DERIVATIVES), thread_name_prefix="derivative-writer")
        webhooks = make_webhook_queue(Redis.from_url(settings.redis_url), settings)
        _resources = Resources(settings, db, Storage(settings), writers, webhooks, os.getpid())
    return _resources
