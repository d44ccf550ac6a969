"""The JSON documents that describe an upload: its status, its results and the whole record.

Made from the row in this one place, so GET /uploads/<id> and the webhook a worker sends are the
same document. Pure: result URLs are presigned by computation, through the caller's `presigner`
(an imgpipe.storage.Storage), for the moment the caller passes. With IMGPIPE_DELIVERY=public the
derivatives' URLs are permanent instead (`<S3_BASE_URL or endpoint>/<bucket>/<key>`, which the
bucket lets anyone read), and the original's stays presigned: originals are never public.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from imgpipe import uploads
from imgpipe.formats import OUTPUT_FORMATS
from imgpipe.keys import DERIVATIVES
from imgpipe.presets import Presets

PUBLIC = "public"  # IMGPIPE_DELIVERY's value that makes derivative URLs permanent


def status_body(row: dict) -> dict:
    error = {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    return {
        "id": row["id"],
        "status": row["status"],
        "error": error,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def results_body(row: dict, presigner, ttl: int, now: datetime, presets: Presets, delivery: str = "private") -> dict:
    """URLs of the original and of every preset's objects once completed, null before.

    `presets` lists them per preset and format, `formats` the same per format and preset, `sizes`
    each preset's width and height (for srcset; null for objects stored before they were
    recorded). The top-level resized, compressed and thumbnail are the built-in presets' JPEG
    ones, as before presets existed (null when the upload has no such object). A completed
    upload lists the objects it has of the presets in use; one still in the works, those it is
    going to get. Presigned URLs expire at `expires_at`; in public delivery the derivatives'
    never do, and `expires_at` is null (the original's URL still lasts `ttl`).
    """
    completed = row["status"] == uploads.COMPLETED
    public = delivery == PUBLIC

    def url(key: str, response_headers: dict[str, str] | None = None) -> str | None:
        return presigner.presign_get(key, ttl, now, response_headers) if completed else None

    def derivative_url(key: str) -> str | None:
        return permanent_url(presigner.public_url, presigner.bucket, key) if public and completed else url(key)

    objects = uploads.derivative_objects(row) if completed else {}
    listed = _listed(row, presets)
    by_preset = {name: {fmt: derivative_url(objects[name][fmt].key) if completed else None
                        for fmt in OUTPUT_FORMATS if fmt in formats} for name, formats in listed.items()}
    by_format = {fmt: {name: urls[fmt] for name, urls in by_preset.items() if fmt in urls} for fmt in OUTPUT_FORMATS}
    return {
        "id": row["id"],
        "status": row["status"],
        "original": url(row["key"], original_response_headers(row)),
        **{name: by_preset.get(name, {}).get("jpeg") for name in DERIVATIVES},
        "formats": {fmt: urls for fmt, urls in by_format.items() if urls},
        "presets": by_preset,
        "sizes": {name: _size(objects.get(name, {}), formats) for name, formats in listed.items()},
        "expires_at": uploads.timestamp(now + timedelta(seconds=ttl)) if completed and not public else None,
    }


def permanent_url(base_url: str, bucket: str, key: str) -> str:
    """The address anyone reads a public derivative at: path-style, as MinIO and a CDN in front of
    it serve it. Keys are made by the server from ids, preset names and extensions."""
    return f"{base_url.rstrip('/')}/{bucket}/{quote(key)}"


def _size(objects: dict[str, uploads.DerivativeObject], formats: tuple[str, ...]) -> dict[str, int | None]:
    """A preset's width and height: every format of it has the same."""
    recorded = next((obj for fmt in formats if (obj := objects.get(fmt)) and obj.width), None)
    return {"width": recorded.width if recorded else None, "height": recorded.height if recorded else None}


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


def record_body(row: dict, presigner, ttl: int, now: datetime, deliveries: list[dict], presets: Presets,
                delivery: str = "private") -> dict:
    """Everything about an upload: status, error, results, image facts (with the placeholder a
    page shows while an image loads) and its callback's delivery."""
    return {**summary_body(row, presigner, ttl, now, presets, delivery), "callback": callback_body(row, deliveries)}


def summary_body(row: dict, presigner, ttl: int, now: datetime, presets: Presets, delivery: str = "private") -> dict:
    """An upload as GET /uploads lists it: the whole record but its callback, which would cost a
    query per row. A deleted upload keeps its facts; its results are null, as its objects are gone.
    Its moderation is here, so a listing shows which uploads were flagged."""
    return {
        **status_body(row),
        "filename": row["filename"],
        "content_type": row["content_type"],
        "key": row["key"],
        "deleted_at": row["deleted_at"],
        "results": results_body(row, presigner, ttl, now, presets, delivery),
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
