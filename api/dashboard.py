"""The RQ dashboard at /rq: queues, workers and failed jobs, read from the pipeline's Redis.

rq-dashboard is mounted as a blueprint of this app, so the API token check covers it
(its pages, data and static files alike). It reads jobs with the same JSON serializer as
every queue and worker (imgpipe.queues), over the API's own Redis client.
"""

from __future__ import annotations

import functools

import rq_dashboard
from flask import Flask, current_app
from redis import Redis
from rq import Worker
from rq.job import Job, requeue_job

from imgpipe.queues import SERIALIZER
from imgpipe.settings import Settings

URL_PREFIX = "/rq"


def mount(app: Flask, settings: Settings, connection: Redis) -> None:
    app.config.from_object(rq_dashboard.default_settings)
    # Shown on its pages, never used to connect: without the password.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (f"redis://{settings.redis_address}",)
    rq_dashboard.web.config.serializer = SERIALIZER
    _read_every_job_as_json()
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)

    def use_the_api_connection():
        current_app.redis_conn = connection

    # In place of rq-dashboard's own hook, which makes a client per request from the URL.
    funcs = app.before_request_funcs[rq_dashboard.blueprint.name]
    funcs[funcs.index(rq_dashboard.web.push_rq_connection)] = use_the_api_connection


class _JsonJob(Job):
    @classmethod
    def fetch(cls, id, connection=None, serializer=None):
        return super().fetch(id, connection=connection, serializer=SERIALIZER)


class _JsonWorker(Worker):
    @classmethod
    def all(cls, connection=None, job_class=None, queue_class=None, queue=None, serializer=None):
        return super().all(connection=connection, job_class=job_class, queue_class=queue_class, queue=queue,
                           serializer=SERIALIZER)


def _read_every_job_as_json() -> None:
    """rq-dashboard 0.9 ignores its serializer setting in a few places (the job page, deleting
    and requeueing a job, a worker's current job), where RQ falls back to pickle: whoever can
    write to Redis would have the API unpickle their bytes. The dashboard's module is given
    RQ's classes with the JSON serializer in their place; nothing else in the process changes."""
    rq_dashboard.web.Job = _JsonJob
    rq_dashboard.web.Worker = _JsonWorker
    rq_dashboard.web.requeue_job = functools.partial(requeue_job, serializer=SERIALIZER)
