"""GET /healthz: 200 when the database, Redis and MinIO all answer, 503 naming what is down.

Either answer names the database engine, so an operator moving to PostgreSQL sees which one
each API process actually uses, and the version, so one can see which hosts an upgrade has reached."""

from __future__ import annotations

from flask import Blueprint, current_app

from imgpipe.version import VERSION

bp = Blueprint("health", __name__)


@bp.get("/healthz", strict_slashes=False)
def healthz():
    svc = current_app.extensions["imgpipe"]
    checks = {"database": lambda: svc.db.execute("SELECT 1").fetchone(),
              "redis": svc.redis.ping,
              "storage": svc.storage.check}
    down = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as error:  # any failure means "down"; the message says which
            down[name] = str(error) or type(error).__name__
    database = {"ok": "database" not in down, "engine": svc.database_engine}
    if down:
        message = "; ".join(f"{name}: {reason}" for name, reason in down.items())
        return {"status": "unavailable", "down": sorted(down),
                "error": {"code": "unavailable", "message": message}, "database": database,
                "version": VERSION}, 503
    return {"status": "ok", "checks": {name: "ok" for name in checks}, "database": database, "version": VERSION}, 200
