"""The JSON documents that describe an upload: its status, its results and the whole record.

Made from the row in this one place, so GET /uploads/<id> and the webhook a worker sends are the
same document. Pure: result URLs are presigned by computation, through the caller's `presigner`
(an imgpipe.storage.Storage), for the moment the caller passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from imgpipe import uploads
from imgpipe.formats import OUTPUT_FORMATS
from imgpipe.keys import DERIVATIVES, derivative_key
from imgpipe.presets import Presets


def status_body(row: dict) -> dict:
    error = {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    return {
        "id": row["id"],
        "status": row["status"],
        "error": error,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def results_body(row: dict, presigner, ttl: int, now: datetime, presets: Presets) -> dict:
    """Presigned GET URLs of the original and of every preset's objects once completed, null before.

    `presets` lists them per preset and format, `formats` the same per format and preset. The
    top-level resized, compressed and thumbnail are the built-in presets' JPEG ones, as before
    presets existed (null when the upload has no such object). A completed upload lists the
    objects it has of the presets in use; one still in the works, those it is going to get.
    """
    completed = row["status"] == uploads.COMPLETED

    def url(key: str, response_headers: dict[str, str] | None = None) -> str | None:
        return presigner.presign_get(key, ttl, now, response_headers) if completed else None

    by_preset = {name: {fmt: url(derivative_key(name, row["id"], fmt)) for fmt in OUTPUT_FORMATS if fmt in formats}
                 for name, formats in _listed(row, presets).items()}
    by_format = {fmt: {name: urls[fmt] for name, urls in by_preset.items() if fmt in urls} for fmt in OUTPUT_FORMATS}
    return {
        "id": row["id"],
        "status": row["status"],
        "original": url(row["key"], original_response_headers(row)),
        **{name: by_preset.get(name, {}).get("jpeg") for name in DERIVATIVES},
        "formats": {fmt: urls for fmt, urls in by_format.items() if urls},
        "presets": by_preset,
        "expires_at": uploads.timestamp(now + timedelta(seconds=ttl)) if completed else None,
    }


def _listed(row: dict, presets: Presets) -> dict[str, tuple[str, ...]]:
    """Preset name -> formats the results list: stored objects of the presets in use once
    completed, the plan before."""
    wanted, formats = uploads.requested_presets(row), uploads.output_formats(row)
    if row["status"] != uploads.COMPLETED:
        return presets.plan(wanted, formats)
    stored = uploads.stored_derivatives(row)
    return {preset.name: tuple(stored[preset.name]) for preset in presets.chosen(wanted) if stored.get(preset.name)}


def original_response_headers(row: dict) -> dict[str, str]:
    """What the store is asked to answer the original with. The original is whatever bytes a
    client sent, perhaps an image that is also an HTML page: it is served as the accepted image
    type it was declared as, and as an attachment, so a browser that opens its URL saves it
    rather than render it as a page of the store's origin."""
    return {"Content-Type": row["content_type"], "Content-Disposition": attachment(row["filename"])}


def attachment(filename: str) -> str:
    """Content-Disposition `attachment` keeping the upload's filename (RFC 6266): a plain ASCII
    fallback for old clients and the exact name in UTF-8."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def record_body(row: dict, presigner, ttl: int, now: datetime, deliveries: list[dict], presets: Presets) -> dict:
    """Everything about an upload: status, error, results, image facts (with the placeholder a
    page shows while an image loads) and its callback's delivery."""
    return {**summary_body(row, presigner, ttl, now, presets), "callback": callback_body(row, deliveries)}


def summary_body(row: dict, presigner, ttl: int, now: datetime, presets: Presets) -> dict:
    """An upload as GET /uploads lists it: the whole record but its callback, which would cost a
    query per row. A deleted upload keeps its facts; its results are null, as its objects are gone.
    Its moderation is here, so a listing shows which uploads were flagged."""
    return {
        **status_body(row),
        "filename": row["filename"],
        "content_type": row["content_type"],
        "key": row["key"],
        "deleted_at": row["deleted_at"],
        "results": results_body(row, presigner, ttl, now, presets),
        "image": {
            "width": row["width"],
            "height": row["height"],
            "format": row["format"],
            "bytes": row["bytes"],
            "blurhash": row["blurhash"],
            "dominant_color": row["dominant_color"],
        },
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
