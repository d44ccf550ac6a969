"""The RQ dashboard at /rq: queues, workers and failed jobs, read from the pipeline's Redis.

rq-dashboard is mounted as a blueprint of this app, so the API token check covers it
(its pages, data and static files alike).
"""

from __future__ import annotations

import rq_dashboard
from flask import Flask

from imgpipe.settings import Settings

URL_PREFIX = "/rq"


def mount(app: Flask, settings: Settings) -> None:
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
