"""Upload routes: create (presign), whole record, status, results, and the older singular paths."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, request

from api.validation import RequestRejected, parse_new_upload
from imgpipe import db as uploads
from imgpipe.keys import DERIVATIVES, derivative_key, is_upload_id, new_upload_id, original_key

bp = Blueprint("uploads", __name__)


def services():
    return current_app.extensions["imgpipe"]


@bp.post("/uploads", strict_slashes=False)
@bp.post("/upload", strict_slashes=False)
def create_upload():
    body = request.get_json(silent=True)
    if body is None:
        raise RequestRejected(400, "invalid_request", "the body must be JSON with filename and content_type")
    svc = services()
    new = parse_new_upload(body, accepted=svc.accepted_types, max_bytes=svc.settings.max_upload_bytes)
    svc.require_storage()
    upload_id = new_upload_id()
    key = original_key(upload_id, new.extension)
    ttl = svc.settings.upload_url_ttl
    now = uploads.utcnow()
    headers = {"Content-Type": new.content_type, "If-None-Match": "*"}
    url = svc.storage.presign_put(key, headers, ttl, now)
    expires_at = now + timedelta(seconds=ttl)
    row = uploads.insert_upload(
        svc.db, upload_id=upload_id, filename=new.filename, content_type=new.content_type, key=key,
        declared_size=new.size, callback_url=new.callback_url, upload_expires_at=expires_at)
    current_app.logger.info("upload %s: pending (%s, %s)", upload_id, new.content_type, new.filename)
    return {
        "id": upload_id,
        "status": row["status"],
        "key": key,
        "upload": {
            "method": "PUT",
            "url": url,
            "headers": headers,
            "expires_at": row["upload_expires_at"],
        },
    }, 201


@bp.get("/uploads/<upload_id>", strict_slashes=False)
def get_record(upload_id):
    row = _find(upload_id)
    return {
        **status_body(row),
        "filename": row["filename"],
        "content_type": row["content_type"],
        "key": row["key"],
        "results": results_body(row),
        "image": {
            "width": row["width"],
            "height": row["height"],
            "format": row["format"],
            "bytes": row["bytes"],
        },
    }


@bp.get("/uploads/<upload_id>/status", strict_slashes=False)
@bp.get("/upload/<upload_id>/status", strict_slashes=False)
def get_status(upload_id):
    return status_body(_find(upload_id))


@bp.get("/uploads/<upload_id>/results", strict_slashes=False)
@bp.get("/upload/<upload_id>/result", strict_slashes=False)
def get_results(upload_id):
    return results_body(_find(upload_id))


def status_body(row: dict) -> dict:
    error = {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    return {
        "id": row["id"],
        "status": row["status"],
        "error": error,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def results_body(row: dict) -> dict:
    """Presigned GET URLs of the original and the derivatives once completed, null before."""
    body = {"id": row["id"], "status": row["status"], "original": None}
    body.update({kind: None for kind in DERIVATIVES})
    body["expires_at"] = None
    if row["status"] == uploads.COMPLETED:
        svc = services()
        ttl = svc.settings.result_url_ttl
        now = uploads.utcnow()
        body["original"] = svc.storage.presign_get(row["key"], ttl, now)
        for kind in DERIVATIVES:
            body[kind] = svc.storage.presign_get(derivative_key(kind, row["id"]), ttl, now)
        body["expires_at"] = uploads.timestamp(now + timedelta(seconds=ttl))
    return body


def _find(upload_id: str) -> dict:
    row = uploads.get_upload(services().db, upload_id) if is_upload_id(upload_id) else None
    if row is None:
        raise RequestRejected(404, "not_found", f"no upload with id {upload_id!r}")
    return row
