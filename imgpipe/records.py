"""The JSON documents that describe an upload: its status, its results and the whole record.

Made from the row in this one place, so GET /uploads/<id> and the webhook a worker sends are the
same document. Pure: result URLs are presigned by computation, through the caller's `presigner`
(an imgpipe.storage.Storage), for the moment the caller passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from imgpipe import db as uploads
from imgpipe.keys import DERIVATIVES, derivative_key


def status_body(row: dict) -> dict:
    error = {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    return {
        "id": row["id"],
        "status": row["status"],
        "error": error,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def results_body(row: dict, presigner, ttl: int, now: datetime) -> dict:
    """Presigned GET URLs of the original and the derivatives once completed, null before.

    The top-level derivative URLs are the JPEG ones (null when JPEG was not asked for);
    `formats` has the three URLs of every format the upload asked for, JPEG included.
    """
    formats = uploads.output_formats(row)
    completed = row["status"] == uploads.COMPLETED

    def url(key: str) -> str | None:
        return presigner.presign_get(key, ttl, now) if completed else None

    by_format = {fmt: {kind: url(derivative_key(kind, row["id"], fmt)) for kind in DERIVATIVES} for fmt in formats}
    jpeg = by_format.get("jpeg", dict.fromkeys(DERIVATIVES))
    return {
        "id": row["id"],
        "status": row["status"],
        "original": url(row["key"]),
        **jpeg,
        "formats": by_format,
        "expires_at": uploads.timestamp(now + timedelta(seconds=ttl)) if completed else None,
    }


def record_body(row: dict, presigner, ttl: int, now: datetime, deliveries: list[dict]) -> dict:
    """Everything about an upload: status, error, results, image facts, its callback's delivery
    and its moderation."""
    return {
        **status_body(row),
        "filename": row["filename"],
        "content_type": row["content_type"],
        "key": row["key"],
        "results": results_body(row, presigner, ttl, now),
        "image": {
            "width": row["width"],
            "height": row["height"],
            "format": row["format"],
            "bytes": row["bytes"],
        },
        "callback": callback_body(row, deliveries),
        "moderation": moderation_body(row),
    }


def moderation_body(row: dict) -> dict | None:
    """The moderation model's score of the upload, whether it was flagged at the threshold in
    force then, and which model said so; null when moderation was off for it (or it was not
    processed yet)."""
    if row["moderation_model"] is None:
        return None
    return {
        "score": row["moderation_score"],
        "flagged": bool(row["moderation_flagged"]),
        "threshold": row["moderation_threshold"],
        "model": {"name": row["moderation_model"], "version": row["moderation_model_version"]},
    }


def callback_body(row: dict, deliveries: list[dict]) -> dict | None:
    """Where the webhook goes, whether it arrived, and every try so far (null without a callback)."""
    if not row["callback_url"]:
        return None
    return {
        "url": row["callback_url"],
        "state": row["callback_state"],
        "attempts": [{"at": attempt["attempted_at"], "http_status": attempt["http_status"], "error": attempt["error"]}
                     for attempt in deliveries],
    }
