"""The RQ job: turn one uploaded original into its derivatives.

The row is the source of truth. A job first claims it (pending or processing → processing,
counting the attempt), writes every derivative, and only then marks it completed, so nothing
claims to be complete before its objects exist. A duplicate job finds the row final and
does nothing. A row that ends with a callback URL gets its webhook delivery enqueued.
"""

from __future__ import annotations

import dataclasses
import logging

from imgpipe import db as uploads
from imgpipe.formats import content_type
from imgpipe.keys import derivative_key
from imgpipe.storage import StorageUnavailable
from processor.imaging import ImageRejected, make_derivatives
from processor.moderation import REJECTED
from processor.resources import Resources, resources
from processor.webhooks import enqueue_delivery

log = logging.getLogger(__name__)


def process_upload(upload_id: str) -> str:
    """Process one upload; returns the row's final status (or 'skipped' if it already was final)."""
    res = resources()
    row = uploads.claim_for_processing(res.db, upload_id)
    if row is None:
        log.info("upload %s: already final, nothing to do", upload_id)
        return "skipped"
    log.info("upload %s: processing (attempt %s)", upload_id, row["attempts"])
    if row["attempts"] > res.settings.max_attempts:
        return _fail(res, row, "internal", f"gave up after {row['attempts'] - 1} attempts that did not finish")
    try:
        return _derive(res, row)
    except ImageRejected as rejected:
        return _fail(res, row, rejected.code, rejected.message)
    except StorageUnavailable as error:
        uploads.release_attempt(res.db, upload_id)
        log.warning("upload %s: storage unavailable (%s), will retry", upload_id, error)
        raise
    except Exception as error:
        if row["attempts"] >= res.settings.max_attempts:
            log.exception("upload %s: attempt %s failed, no attempts left", upload_id, row["attempts"])
            return _fail(res, row, "internal", f"{type(error).__name__}: {error}")
        log.warning("upload %s: attempt %s failed (%s), will retry", upload_id, row["attempts"], error)
        raise


def _derive(res: Resources, row: dict) -> str:
    upload_id, key = row["id"], row["key"]
    size = res.storage.size_of(key)
    if size is None:
        return _fail(res, row, "missing_original", "the original is not in the bucket")
    if size > res.settings.max_upload_bytes:
        raise ImageRejected(
            "too_large", f"the upload is {size} bytes; the limit is {res.settings.max_upload_bytes}")
    data = res.storage.read(key)
    derivatives = make_derivatives(data, max_pixels=res.settings.max_pixels, formats=uploads.output_formats(row))
    if res.moderator is not None:
        verdict = res.moderator.judge(derivatives.by_format())
        uploads.record_moderation(res.db, upload_id, **dataclasses.asdict(verdict))
        if verdict.flagged:
            log.info("upload %s: flagged by moderation (score %.4f, threshold %s)", upload_id, verdict.score,
                     verdict.threshold)
        if verdict.flagged and res.moderator.rejects:
            # Before any derivative is written: a rejected upload never has any.
            return _fail(res, row, REJECTED, f"the moderation model scored it {verdict.score:.4f},"
                                             f" at or over the threshold {verdict.threshold}")
    writes = [
        res.writers.submit(res.storage.write, derivative_key(kind, upload_id, fmt), encoded, content_type(fmt))
        for fmt, made in derivatives.by_format().items()
        for kind, encoded in made.items()
    ]
    for write in writes:
        write.result()
    if uploads.mark_completed(res.db, upload_id, size=len(data), width=derivatives.width,
                              height=derivatives.height, image_format=derivatives.format):
        _announce(res, row)
    log.info("upload %s: completed (%s %sx%s, %s bytes)", upload_id, derivatives.format,
             derivatives.width, derivatives.height, len(data))
    return uploads.COMPLETED


def _fail(res: Resources, row: dict, code: str, message: str) -> str:
    if uploads.mark_failed(res.db, row["id"], code, message):
        _announce(res, row)
    log.info("upload %s: failed %s: %s", row["id"], code, message)
    return uploads.FAILED


def _announce(res: Resources, row: dict) -> None:
    """Enqueue the webhook of a row that has just become final. Its failure is logged, never
    raised: the upload is already done, and a webhook must not undo or delay that."""
    if not row["callback_url"]:
        return
    try:
        enqueue_delivery(res.webhooks, res.settings, row["id"])
    except Exception:
        log.exception("upload %s: could not enqueue its webhook", row["id"])
