"""The RQ dashboard at /rq: queues, workers and failed jobs, read from the pipeline's Redis.

rq-dashboard is mounted as a blueprint of this app, so the API token check covers it
(its pages, data and static files alike). It reads jobs with the same JSON serializer as
every queue and worker (imgpipe.queues), over the API's own Redis client. Two rules more keep
a browser from being used against it: no other site's page may call it, whatever credential
the browser would attach, and a GET changes nothing (rq-dashboard also takes GET on some of
its actions; every action it offers takes POST, which its own pages use).
"""

from __future__ import annotations

import functools

import rq_dashboard
from flask import Flask, current_app, request
from redis import Redis
from rq import Worker
from rq.job import Job, requeue_job

from api.errors import error_response
from api.sites import is_cross_site
from imgpipe.error_codes import ApiError
from imgpipe.queues import SERIALIZER
from imgpipe.settings import Settings

URL_PREFIX = "/rq"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


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

    actions = frozenset(rule.endpoint for rule in app.url_map.iter_rules()
                        if rule.endpoint.startswith(rq_dashboard.blueprint.name + ".") and "POST" in rule.methods)

    @app.before_request
    def guard_dashboard():
        if not is_dashboard_path(request.path):
            return None
        if is_cross_site():
            return error_response(403, ApiError.CROSS_SITE, "the dashboard answers only its own pages")
        if request.method in SAFE_METHODS and request.endpoint in actions:
            response = error_response(405, ApiError.METHOD_NOT_ALLOWED, "dashboard actions are POST requests")
            response.headers["Allow"] = "POST"
            return response
        return None


def is_dashboard_path(path: str) -> bool:
    return path == URL_PREFIX or path.startswith(URL_PREFIX + "/")


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
