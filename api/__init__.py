"""The HTTP API: presigns uploads, records rows and answers status and results.

It never touches image bytes: clients PUT straight to object storage.
"""

from __future__ import annotations

import hmac
import threading

from flask import Flask, request
from PIL import Image
from redis import Redis

from api.errors import register_error_handlers
from api.validation import RequestRejected, accepted_content_types
from imgpipe.db import connect, ensure_schema
from imgpipe.settings import Settings
from imgpipe.storage import Storage

OPEN_PATHS = ("/healthz",)


class Services:
    """What request handlers use: built once per process, a database connection per thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.storage = Storage(settings, timeout=3.0, retries=0)
        self.redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.accepted_types = accepted_content_types(_readable_extensions())
        self._local = threading.local()
        ensure_schema(self.db)

    @property
    def db(self):
        if getattr(self._local, "db", None) is None:
            self._local.db = connect(self.settings.database_path)
        return self._local.db


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["imgpipe"] = Services(settings)

    from api import health, page, uploads
    app.register_blueprint(uploads.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(page.bp)
    register_error_handlers(app)

    if settings.api_token:
        @app.before_request
        def require_token():
            if request.path in OPEN_PATHS:
                return None
            supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied.encode(), settings.api_token.encode()):
                raise RequestRejected(401, "unauthorized", "a valid API token is required")
            return None

    return app


def _readable_extensions() -> set[str]:
    import processor.imaging  # noqa: F401  registers the optional decoders the workers use
    return {extension.lstrip(".") for extension in Image.registered_extensions()}
