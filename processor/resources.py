"""What jobs use in a worker process: made by its first job and reused by the next ones.

RQ calls a job with its arguments only, so the worker hands its Settings over once, with
`use_settings`, before it takes a job; every job then sees the settings the worker was
started with. A forked child (RQ's forking worker) makes its own connections and threads
from the same settings, since it cannot share its parent's.
The moderation model is the exception to "made by its first job": the worker loads it as it
starts, so a model that cannot be loaded stops the worker there.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rq import Queue

from imgpipe import uploads
from imgpipe.engines import Database
from imgpipe.keys import DERIVATIVES
from imgpipe.queues import make_webhook_queue
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from imgpipe.storage import Storage
from imgpipe.store_identities import WORKER
from processor.moderation import Moderator, load_moderator


@dataclass
class Resources:
    settings: Settings
    db: Database
    storage: Storage
    writers: ThreadPoolExecutor
    webhooks: Queue
    moderator: Moderator | None
    pid: int


_settings: Settings | None = None
_resources: Resources | None = None
_moderator: tuple[int, Moderator | None] | None = None


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
        webhooks = make_webhook_queue(redis_client(_settings, "jobs"), _settings)
        _resources = Resources(_settings, db, Storage(_settings, WORKER), writers, webhooks, moderator(_settings),
                               os.getpid())
    return _resources


def moderator(settings: Settings) -> Moderator | None:
    """This process's moderation model (None when moderation is off), loaded by its first call
    and never again in this process; raises ModelUnavailable when it cannot be loaded."""
    global _moderator
    if _moderator is None or _moderator[0] != os.getpid():
        _moderator = (os.getpid(), load_moderator(settings))
    return _moderator[1]
