"""GET /healthz: 200 when the database, Redis and MinIO all answer, 503 naming what is down.

It is open to anyone who can reach the API, so it says only ok or down per dependency: an
exception's text can carry a host name, a user name or a path, and goes to the log instead.
Either answer names the database engine, so an operator moving to PostgreSQL sees which one
each API process actually uses, and the version, so one can see which hosts an upgrade has reached."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app

from imgpipe.error_codes import ApiError
from imgpipe.version import VERSION

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz", strict_slashes=False)
def healthz():
    svc = current_app.extensions["imgpipe"]
    checks = {"database": lambda: svc.db.execute("SELECT 1").fetchone(),
              "redis": svc.record_presets,  # a write answers as a PING would, and keeps the record
              "storage": svc.storage.check}
    down = []
    for name, check in checks.items():
        try:
            check()
        except Exception as error:  # any failure means "down"; why is for the operator's log
            log.warning("healthz: %s is down: %s", name, str(error) or type(error).__name__)
            down.append(name)
    states = {name: "down" if name in down else "ok" for name in checks}
    database = {"ok": "database" not in down, "engine": svc.database_engine}
    if down:
        return {"status": "unavailable", "down": sorted(down), "checks": states,
                "error": {"code": ApiError.UNAVAILABLE, "message": f"down: {', '.join(sorted(down))}"},
                "database": database, "version": VERSION}, 503
    return {"status": "ok", "checks": states, "database": database, "version": VERSION}, 200
