"""The RQ dashboard at /rq: queues, workers and failed jobs, read from the pipeline's Redis.

rq-dashboard is mounted as a blueprint of this app, so the API token check covers it
(its pages, data and static files alike). It reads jobs with the same JSON serializer as
every queue and worker (imgpipe.queues), over the API's own Redis client.
"""

from __future__ import annotations

import rq_dashboard
from flask import Flask, current_app
from redis import Redis
from rq.serializers import DefaultSerializer

from imgpipe.queues import SERIALIZER
from imgpipe.settings import Settings

URL_PREFIX = "/rq"


def mount(app: Flask, settings: Settings, connection: Redis) -> None:
    app.config.from_object(rq_dashboard.default_settings)
    # Shown on its pages, never used to connect: without the password.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (f"redis://{settings.redis_address}",)
    rq_dashboard.web.config.serializer = SERIALIZER
    _read_rq_defaults_as_json()
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)

    def use_the_api_connection():
        current_app.redis_conn = connection

    # In place of rq-dashboard's own hook, which makes a client per request from the URL.
    funcs = app.before_request_funcs[rq_dashboard.blueprint.name]
    funcs[funcs.index(rq_dashboard.web.push_rq_connection)] = use_the_api_connection


def _read_rq_defaults_as_json() -> None:
    """rq-dashboard 0.9 ignores its serializer setting in a few places (the job page, deleting
    and requeueing a job, a worker's current job), where RQ falls back to pickle: whoever can
    write to Redis would have this process unpickle their bytes. Nothing imgpipe stores is
    pickled, so in this process RQ's default serializer is JSON too."""
    DefaultSerializer.dumps = staticmethod(SERIALIZER.dumps)
    DefaultSerializer.loads = staticmethod(SERIALIZER.loads)
