"""What jobs use in a worker process: made by its first job and reused by the next ones.

Made again in a forked child, which cannot share its parent's database connection or threads.
The moderation model is the exception to "made by its first job": the worker loads it as it
starts, so a model that cannot be loaded stops the worker there.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlite_utils
from redis import Redis
from rq import Queue

from imgpipe import db as uploads
from imgpipe.keys import DERIVATIVES
from imgpipe.settings import Settings
from imgpipe.storage import Storage
from processor.jobs import make_webhook_queue
from processor.moderation import Moderator, load_moderator


@dataclass
class Resources:
    settings: Settings
    db: sqlite_utils.Database
    storage: Storage
    writers: ThreadPoolExecutor
    webhooks: Queue
    moderator: Moderator | None
    pid: int


_resources: Resources | None = None
_moderator: tuple[int, Moderator | None] | None = None


def resources() -> Resources:
    global _resources
    if _resources is None or _resources.pid != os.getpid():
        settings = Settings.from_env()
        db = uploads.connect(settings.database_path)
        uploads.ensure_schema(db)
        writers = ThreadPoolExecutor(max_workers=len(DERIVATIVES), thread_name_prefix="derivative-writer")
        webhooks = make_webhook_queue(Redis.from_url(settings.redis_url), settings)
        _resources = Resources(settings, db, Storage(settings), writers, webhooks, moderator(settings), os.getpid())
    return _resources


def moderator(settings: Settings) -> Moderator | None:
    """This process's moderation model (None when moderation is off), loaded by its first call
    and never again in this process; raises ModelUnavailable when it cannot be loaded."""
    global _moderator
    if _moderator is None or _moderator[0] != os.getpid():
        _moderator = (os.getpid(), load_moderator(settings))
    return _moderator[1]
