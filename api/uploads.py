"""Upload routes: create (presign) one or a batch, list, whole record, status, results, delete,
and the older singular paths."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, g, request
from werkzeug.routing import BaseConverter

from api.listing import encode_cursor, parse_list_query
from api.validation import NewUpload, RequestRejected, parse_batch, parse_json_body, parse_new_upload
from imgpipe import uploads
from imgpipe.deletion import delete_upload
from imgpipe.error_codes import ApiError
from imgpipe.keys import UPLOAD_ID_REGEX, new_upload_id, original_key
from imgpipe.multipart import MIB, plan_parts, wants_multipart
from imgpipe.records import record_body, results_body, status_body, summary_body

bp = Blueprint("uploads", __name__)


class UploadIdConverter(BaseConverter):
    """Only an upload id matches <upload_id:...>, so /uploads/batch is never read as one."""

    regex = UPLOAD_ID_REGEX


def services():
    return current_app.extensions["imgpipe"]


@bp.post("/uploads", strict_slashes=False)
@bp.post("/upload", strict_slashes=False)
def create_upload():
    svc = services()
    new = parse_new_upload(_json_body("the body must be JSON with filename and content_type"), svc.rules)
    svc.require_storage()
    _charge_upload_token(svc, [new])
    return create(svc, new), 201


@bp.post("/uploads/batch", strict_slashes=False)
def create_batch():
    """Several uploads at once: each entry answered as POST /uploads would, a refused one in place."""
    svc = services()
    entries = [_parse_entry(svc, entry)
               for entry in parse_batch(_json_body("the body must be JSON with a files list"), svc.settings.max_batch)]
    svc.require_storage()
    _charge_upload_token(svc, [entry for entry in entries if isinstance(entry, NewUpload)])
    return {"uploads": [create(svc, entry) if isinstance(entry, NewUpload) else entry for entry in entries]}, 201


def _parse_entry(svc, entry: dict) -> NewUpload | dict:
    try:
        return parse_new_upload(entry, svc.rules)
    except RequestRejected as rejected:
        return {"error": {"code": rejected.code, "message": rejected.message}, "status": rejected.status}


def _charge_upload_token(svc, news: list[NewUpload]) -> None:
    """Count the uploads a browser upload token is about to create against its caps, all or none.

    Bytes are the sizes the uploads declare, which their upload URLs sign as Content-Length, so
    the store holds each PUT to them.
    """
    token = g.get("upload_token")
    if token is None or not news or (token.max_files is None and token.max_bytes is None):
        return
    expires_at = datetime.fromtimestamp(token.expires_at, timezone.utc)
    size = sum(new.size for new in news)
    if not uploads.charge_upload_token(svc.db, token.id, expires_at, files=len(news), size=size,
                                       max_files=token.max_files, max_bytes=token.max_bytes):
        raise RequestRejected(403, ApiError.TOKEN_EXHAUSTED,
                              f"this upload token has no room left for {len(news)} more file(s) of {size} bytes")


def create(svc, new: NewUpload) -> dict:
    """Record a pending upload and say how to send its bytes: the body of POST /uploads' 201.

    One PUT, presigned: the signed Content-Length makes the store itself refuse a PUT of any other
    length, so no more than the declared size (itself at most IMGPIPE_MAX_UPLOAD_BYTES) can ever be
    stored. In parts (api.multipart): the multipart upload is made at the store here, and each
    part's URL signs that part's length, so the same holds part by part.
    """
    upload_id = new_upload_id()
    key = original_key(upload_id, new.extension)
    now = uploads.utcnow()
    if wants_multipart(new.multipart, new.size, svc.settings.multipart_threshold_mb * MIB):
        return _create_multipart(svc, new, upload_id, key, now)
    ttl = svc.settings.upload_url_ttl
    headers = {"Content-Type": new.content_type, "If-None-Match": "*", "Content-Length": str(new.size)}
    url = svc.storage.presign_put(key, headers, ttl, now)
    row = _insert(svc, new, upload_id, key, now + timedelta(seconds=ttl))
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
    }


def _create_multipart(svc, new: NewUpload, upload_id: str, key: str, now: datetime) -> dict:
    """The store's multipart upload first, then the row that names it. A store upload whose row
    never came holds no part (nobody was given a URL for one); MinIO drops it after its
    MINIO_API_STALE_UPLOADS_EXPIRY."""
    plan = plan_parts(new.size)
    s3_upload_id = svc.multipart.create_multipart(key, new.content_type)
    row = _insert(svc, new, upload_id, key, now + timedelta(seconds=svc.settings.multipart_ttl),
                  multipart_upload_id=s3_upload_id, multipart_part_size=plan.part_size)
    return {
        "id": upload_id,
        "status": row["status"],
        "key": key,
        "multipart": {
            "upload_id": s3_upload_id,
            "key": key,
            "part_size": plan.part_size,
            "part_count": plan.count,
            "expires_at": row["upload_expires_at"],
        },
    }


def _insert(svc, new: NewUpload, upload_id: str, key: str, expires_at: datetime, **multipart) -> dict:
    row = uploads.insert_upload(
        svc.db, upload_id=upload_id, filename=new.filename, content_type=new.content_type, key=key,
        declared_size=new.size, callback_url=new.callback_url, upload_expires_at=expires_at, formats=new.formats,
        upload_token_id=_upload_token_id(), presets=new.presets, **multipart)
    current_app.logger.info("upload %s: pending (%s, %s%s)", upload_id, new.content_type, new.filename,
                            ", in parts" if multipart else "")
    return row


@bp.get("/uploads", strict_slashes=False)
def list_uploads():
    """Newest first, a page at a time; next_cursor asks for the page after, null on the last one."""
    svc = services()
    query = parse_list_query(request.args.to_dict(flat=False), uploads.STATUSES)
    rows = uploads.list_uploads(svc.db, status=query.status, flagged=query.flagged, limit=query.limit + 1,
                                after=query.after)
    page, more = rows[:query.limit], len(rows) > query.limit
    now = uploads.utcnow()
    return {
        "uploads": [summary_body(row, svc.storage, svc.settings.result_url_ttl, now, svc.settings.derivative_presets,
                                 svc.settings.delivery)
                    for row in page],
        "next_cursor": encode_cursor(page[-1]) if more else None,
    }


@bp.delete("/uploads/<upload_id:upload_id>", strict_slashes=False)
def remove_upload(upload_id):
    """Delete the upload's objects; the row stays, deleted. Asking again answers the same."""
    svc = services()
    row = delete_upload(svc.db, svc.storage, upload_id, svc.settings.derivative_presets)
    if row is None:
        raise RequestRejected(404, ApiError.NOT_FOUND, f"no upload with id {upload_id!r}")
    current_app.logger.info("upload %s: deleted", upload_id)
    return status_body(row)


@bp.get("/uploads/<upload_id:upload_id>", strict_slashes=False)
def get_record(upload_id):
    row = _find(upload_id)
    svc = services()
    deliveries = uploads.delivery_attempts(svc.db, row["id"])
    return record_body(row, svc.storage, svc.settings.result_url_ttl, uploads.utcnow(), deliveries,
                       svc.settings.derivative_presets, svc.settings.delivery)


@bp.get("/uploads/<upload_id:upload_id>/status", strict_slashes=False)
@bp.get("/upload/<upload_id:upload_id>/status", strict_slashes=False)
def get_status(upload_id):
    return status_body(_find(upload_id))


@bp.get("/uploads/<upload_id:upload_id>/results", strict_slashes=False)
@bp.get("/upload/<upload_id:upload_id>/result", strict_slashes=False)
def get_results(upload_id):
    svc = services()
    return results_body(_find(upload_id), svc.storage, svc.settings.result_url_ttl, uploads.utcnow(),
                        svc.settings.derivative_presets, svc.settings.delivery)


# A client of the service imgpipe replaced posts the file itself as a form; it is told the two steps
# that replace that, without the API reading the bytes.
FORM_REFUSAL = ("imgpipe takes no image bytes: first POST /uploads with JSON {\"filename\", \"content_type\", "
                "\"size\"} (size in bytes), then PUT the file to the upload.url it answers, with every header "
                "in upload.headers; see docs/getting-started.md")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _json_body(refusal: str):
    if request.mimetype in FORM_TYPES:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, FORM_REFUSAL)
    if not request.is_json:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, refusal)
    body = parse_json_body(request.get_data(cache=False), refusal)
    if body is None:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, refusal)
    return body


def _upload_token_id() -> str | None:
    token = g.get("upload_token")
    return token.id if token is not None else None


def _find(upload_id: str) -> dict:
    """The row, readable by the API token and by the upload token it was made with."""
    row = uploads.get_upload(services().db, upload_id)
    if row is None:
        raise RequestRejected(404, ApiError.NOT_FOUND, f"no upload with id {upload_id!r}")
    token_id = _upload_token_id()
    if token_id is not None and row["upload_token_id"] != token_id:
        raise RequestRejected(403, ApiError.FORBIDDEN, "this upload was not made with this upload token")
    return row
