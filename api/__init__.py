"""The HTTP API: presigns uploads, records rows and answers status and results.

It never touches image bytes: clients PUT straight to object storage.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import redis
from flask import Flask

from api.errors import register_error_handlers
from api.validation import UploadRules
from imgpipe.callback_addresses import check_new_callback, resolve_host
from imgpipe.uploads import connect, require_schema
from imgpipe.decoders import readable_formats
from imgpipe.engines import split_url
from imgpipe.formats import accepted_content_types, writable_formats
from imgpipe.queues import presets_version_key
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from imgpipe.storage import Storage, StorageUnavailable
from imgpipe.store_identities import API, MULTIPART

log = logging.getLogger(__name__)

STORAGE_CHECK_INTERVAL = 1.0


class Services:
    """What request handlers use: built once per process, a database connection per thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.database_engine, _ = split_url(settings.database)
        self.storage = Storage(settings, API, timeout=1.0, retries=0)
        self.multipart = Storage(settings, MULTIPART, timeout=10.0, retries=0)  # api.multipart's store calls
        self.redis = redis_client(settings, "api")
        self.rules = UploadRules(
            accepted=accepted_content_types(readable_formats()),
            max_bytes=settings.max_upload_bytes,
            writable_formats=writable_formats(),
            check_callback=functools.partial(
                check_new_callback, allowed_hosts=settings.webhook_allow_hosts, resolve=resolve_host,
                allowed_ports=settings.webhook_ports),
            presets=settings.derivative_presets.names,
        )
        self._local = threading.local()
        self._storage_checked_at = -STORAGE_CHECK_INTERVAL
        self._storage_error: StorageUnavailable | None = None
        require_schema(self.db)
        try:
            self.record_presets()
        except redis.RedisError as error:
            log.warning("could not record this API's presets in Redis (%s): workers wait until /healthz has", error)

    def record_presets(self) -> None:
        """Tell the workers which presets this API accepts uploads by: a worker with others
        refuses to start (processor.worker), rather than skip a preset an upload asked for.
        /healthz says it again, so the record comes back if Redis lost it."""
        self.redis.set(presets_version_key(self.settings), self.settings.derivative_presets.version)

    def require_storage(self) -> None:
        """Refuse new uploads while MinIO is down, rather than hand out URLs that cannot work.

        Presigning needs no network, so the answer is remembered for a second: one HEAD a
        second per process, not one per request.
        """
        now = time.monotonic()
        if now - self._storage_checked_at >= STORAGE_CHECK_INTERVAL:
            try:
                self.storage.check()
                self._storage_error = None
            except StorageUnavailable as error:
                self._storage_error = error
            self._storage_checked_at = now
        if self._storage_error is not None:
            raise self._storage_error

    @property
    def db(self):
        if getattr(self._local, "db", None) is None:
            self._local.db = connect(self.settings.database)
        return self._local.db


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["imgpipe"] = Services(settings)

    from api import access, browser, dashboard, delivery, health, hosts, limits, login, metrics, multipart, openapi, page, uploads
    hosts.install(app, settings)  # first: a request by an unknown name gets no further
    limits.install(app, settings)  # before the credential check, so that its refusals count
    access.install(app, settings)
    app.url_map.converters["upload_id"] = uploads.UploadIdConverter
    app.register_blueprint(uploads.bp)
    app.register_blueprint(multipart.bp)
    app.register_blueprint(delivery.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(page.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(openapi.bp)
    dashboard.mount(app, settings, app.extensions["imgpipe"].redis)
    register_error_handlers(app)
    browser.install(app, settings)
    return app
