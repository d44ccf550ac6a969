"""What jobs use in a worker process: made by its first job and reused by the next ones.

RQ calls a job with its arguments only, so the worker hands its Settings over once, with
`use_settings`, before it takes a job; every job then sees the settings the worker was
started with. A forked child (RQ's forking worker) makes its own connections and threads
from the same settings, since it cannot share its parent's.
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
from imgpipe.queues import make_webhook_queue
from imgpipe.settings import Settings
from imgpipe.storage import Storage


@dataclass
class Resources:
    settings: Settings
    db: Database
    storage: Storage
    writers: ThreadPoolExecutor
    webhooks: Queue
    pid: int


_settings: Settings | None = None
_resources: Resources | None = None


def use_settings(settings: Settings) -> None:
    """The settings every job in this process runs with; call before the first job."""
    global _settings, _resources
    _settings, _resources = settings, None


def resources() -> Resources:
    global _resources
    if _settings is None:
        raise RuntimeError("processor.resources.use_settings() was not called: start workers with `imgpipe worker`")
    if _resources is None or _resources.pid != os.getpid():
        db = uploads.connect(_settings.database)
        writers = ThreadPoolExecutor(max_workers=len(DERIVATIVES), thread_name_prefix="derivative-writer")
        webhooks = make_webhook_queue(Redis.from_url(_settings.redis_url), _settings)
        _resources = Resources(_settings, db, Storage(_settings), writers, webhooks, os.getpid())
    return _resources
