"""Uploads in parts (S3 multipart), the calls @uppy/aws-s3 and `imgpipe upload` make: sign part n,
list the parts, complete, abort. POST /uploads creates the upload (api.uploads).

The store carries the bytes; the API only signs and checks. A part URL is good for one UploadPart
of exactly that part's length, signed by the upload identity. Completing is the API's alone: it
lists the parts at the store itself, holds them to the plan the declared size makes
(imgpipe.multipart), and completes with the multipart identity, so the object that lands is
exactly the declared size however the client cut its parts. From there the row goes on as after
a single PUT: the store's event starts the processing.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app

from api.uploads import _find, _json_body, services
from api.validation import RequestRejected
from imgpipe import uploads
from imgpipe.error_codes import ApiError, UploadFailure
from imgpipe.multipart import Part, PartPlan, check_parts, plan_parts
from imgpipe.records import record_body, status_body

bp = Blueprint("multipart", __name__)

COMPLETE_BODY = "the body must be JSON: {\"parts\": [{\"part_number\": n, \"etag\": \"...\"}, ...]}"


@bp.get("/uploads/<upload_id:upload_id>/multipart/parts/<int:number>", strict_slashes=False)
def sign_part(upload_id, number):
    row = _open(upload_id)
    plan = _plan(row)
    try:
        length = plan.length(number)
    except ValueError as error:
        raise RequestRejected(400, ApiError.INVALID_PART_NUMBER, str(error)) from None
    now = uploads.utcnow()
    expires_at = uploads.parse_timestamp(row["upload_expires_at"])
    ttl = max(1, min(services().settings.upload_url_ttl, int((expires_at - now).total_seconds())))
    url = services().storage.presign_part(row["key"], row["multipart_upload_id"], number, length, ttl, now)
    return {"part_number": number, "url": url, "method": "PUT", "headers": {"Content-Length": str(length)},
            "size": length, "expires_at": uploads.timestamp(now + timedelta(seconds=ttl))}


@bp.get("/uploads/<upload_id:upload_id>/multipart/parts", strict_slashes=False)
def list_parts(upload_id):
    row = _open(upload_id)
    return {"parts": [{"part_number": part.number, "size": part.size, "etag": part.etag}
                      for part in _stored_parts(row)]}


@bp.post("/uploads/<upload_id:upload_id>/multipart/complete", strict_slashes=False)
def complete(upload_id):
    """Complete once the store's parts are exactly the plan's. Asking again after it succeeded
    answers the record again: a client that lost the first answer may retry."""
    svc = services()
    row = _multipart_row(upload_id)
    if row["status"] in (uploads.PROCESSING, uploads.COMPLETED):
        return _record(svc, row)
    row = _open(upload_id, row)
    asked = _parse_parts(_json_body(COMPLETE_BODY))
    stored = svc.multipart.parts(row["key"], row["multipart_upload_id"])
    if stored is None or not svc.multipart.complete_multipart(
            row["key"], row["multipart_upload_id"], check_parts(_plan(row), stored, asked)):
        # The store no longer has the upload: completed by an earlier call whose answer was lost, or aborted.
        if svc.storage.listed_size(row["key"]) != row["declared_size"]:
            raise RequestRejected(409, ApiError.MULTIPART_NOT_OPEN,
                                  "the store no longer has this multipart upload: it was aborted")
    uploads.close_multipart(svc.db, upload_id)
    current_app.logger.info("upload %s: completed from its parts", upload_id)
    return _record(svc, uploads.get_upload(svc.db, upload_id))


@bp.delete("/uploads/<upload_id:upload_id>/multipart", strict_slashes=False)
def abort(upload_id):
    """Drop the parts at the store; the upload ends failed, upload_aborted."""
    svc = services()
    row = _multipart_row(upload_id)
    if row["status"] != uploads.PENDING:
        raise RequestRejected(409, ApiError.UPLOAD_NOT_PENDING,
                              f"the upload is {row['status']}: there is nothing to abort")
    svc.multipart.abort_multipart(row["key"], row["multipart_upload_id"])
    uploads.close_multipart(svc.db, upload_id)
    uploads.mark_failed(svc.db, upload_id, UploadFailure.UPLOAD_ABORTED,
                        "the multipart upload was aborted by its client")
    current_app.logger.info("upload %s: multipart upload aborted", upload_id)
    return status_body(uploads.get_upload(svc.db, upload_id))


def _multipart_row(upload_id: str) -> dict:
    """The row (readable by this credential) of an upload made in parts."""
    row = _find(upload_id)
    if not row["multipart_upload_id"]:
        raise RequestRejected(409, ApiError.NOT_MULTIPART, "this upload is sent with one PUT, not in parts")
    return row


def _open(upload_id: str, row: dict | None = None) -> dict:
    """The row of a multipart upload that may still take parts: pending, and within its time."""
    row = row or _multipart_row(upload_id)
    if row["status"] != uploads.PENDING:
        raise RequestRejected(409, ApiError.UPLOAD_NOT_PENDING,
                              f"the upload is {row['status']}: it takes no more parts")
    if uploads.parse_timestamp(row["upload_expires_at"]) <= uploads.utcnow():
        raise RequestRejected(410, ApiError.UPLOAD_EXPIRED, "the multipart upload's time is over; start a new upload")
    return row


def _plan(row: dict) -> PartPlan:
    return plan_parts(row["declared_size"], row["multipart_part_size"])


def _stored_parts(row: dict) -> list[Part]:
    parts = services().multipart.parts(row["key"], row["multipart_upload_id"])
    if parts is None:
        raise RequestRejected(409, ApiError.MULTIPART_NOT_OPEN, "the store no longer has this multipart upload")
    return parts


def _record(svc, row: dict) -> dict:
    return record_body(row, svc.storage, svc.settings.result_url_ttl, uploads.utcnow(),
                       uploads.delivery_attempts(svc.db, row["id"]), svc.settings.derivative_presets,
                       svc.settings.delivery)


def _parse_parts(body) -> list[Part]:
    """The client's list of parts: each a part number and the ETag its PUT was answered with."""
    parts = body.get("parts") if isinstance(body, dict) and set(body) == {"parts"} else None
    if not isinstance(parts, list) or not parts or not all(
            isinstance(part, dict) and set(part) == {"part_number", "etag"}
            and isinstance(part["part_number"], int) and not isinstance(part["part_number"], bool)
            and isinstance(part["etag"], str) for part in parts):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, COMPLETE_BODY)
    return [Part(part["part_number"], -1, part["etag"]) for part in parts]
