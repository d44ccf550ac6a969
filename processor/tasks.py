"""The RQ job: turn one uploaded original into its derivatives.

The row is the source of truth. A job first claims it (pending or processing → processing,
counting the attempt), writes every derivative, and only then marks it completed, so nothing
claims to be complete before its objects exist. A duplicate job finds the row final and
does nothing. A row that ends with a callback URL gets its webhook delivery enqueued.

The bucket keeps only what an upload can still use: an original refused for what it contains is
removed as soon as the row says why, and a job whose upload was deleted while it ran removes
what it wrote (its UPDATE to completed fails on a deleted row).
"""

from __future__ import annotations

import dataclasses
import logging

from imgpipe import db as uploads
from imgpipe.deletion import upload_keys
from imgpipe.formats import content_type
from imgpipe.keys import derivative_key
from imgpipe.storage import StorageUnavailable
from processor.imaging import ImageRejected, make_derivatives
from processor.moderation import REJECTED
from processor.resources import Resources, resources
from processor.webhooks import enqueue_delivery

log = logging.getLogger(__name__)

# Failures caused by the upload's own bytes: its original can never become anything.
REJECTED_CONTENT = frozenset({"empty_file", "not_an_image", "corrupt_image", "too_large", "too_many_pixels",
                              "unsupported_format"})


def process_upload(upload_id: str) -> str:
    """Process one upload; returns the row's final status (or 'skipped' if it already was final)."""
    res = resources()
    row = uploads.claim_for_processing(res.db, upload_id)
    if row is None:
        log.info("upload %s: already final, nothing to do", upload_id)
        _remove_if_deleted(res, upload_id)
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
    made = [(derivative_key(kind, upload_id, fmt), encoded, content_type(fmt))
            for fmt, by_kind in derivatives.by_format().items() for kind, encoded in by_kind.items()]
    writes = [res.writers.submit(res.storage.write, target, encoded, mime) for target, encoded, mime in made]
    for write in writes:
        write.result()
    uploads.record_derivative_bytes(res.db, upload_id, sum(len(encoded) for _, encoded, _ in made))
    if uploads.mark_completed(res.db, upload_id, size=len(data), width=derivatives.width,
                              height=derivatives.height, image_format=derivatives.format):
        _announce(res, row)
    elif _remove_if_deleted(res, upload_id):
        return uploads.DELETED
    log.info("upload %s: completed (%s %sx%s, %s bytes)", upload_id, derivatives.format,
             derivatives.width, derivatives.height, len(data))
    return uploads.COMPLETED


def _fail(res: Resources, row: dict, code: str, message: str) -> str:
    if uploads.mark_failed(res.db, row["id"], code, message):
        if code in REJECTED_CONTENT:
            _remove_rejected_original(res, row)
        _announce(res, row)
    log.info("upload %s: failed %s: %s", row["id"], code, message)
    return uploads.FAILED


def _remove_rejected_original(res: Resources, row: dict) -> None:
    """Logged, never raised, when storage refuses: the sweeper removes the originals of failed rows."""
    try:
        res.storage.remove([row["key"]])
        log.info("upload %s: rejected original removed", row["id"])
    except StorageUnavailable as error:
        log.warning("upload %s: could not remove its rejected original yet (%s)", row["id"], error)


def _remove_if_deleted(res: Resources, upload_id: str) -> bool:
    """When the upload was deleted while this job held it, remove every object it may have written.
    The DELETE removed what was there then; this removes what came after."""
    row = uploads.get_upload(res.db, upload_id)
    if row is None or row["status"] != uploads.DELETED:
        return False
    res.storage.remove(upload_keys(row))
    log.info("upload %s: deleted while processing, its objects removed", upload_id)
    return True


def _announce(res: Resources, row: dict) -> None:
    """Enqueue the webhook of a row that has just become final. Its failure is logged, never
    raised: the upload is already done, and a webhook must not undo or delay that."""
    if not row["callback_url"]:
        return
    try:
        enqueue_delivery(res.webhooks, res.settings, row["id"])
    except Exception:
        log.exception("upload %s: could not enqueue its webhook", row["id"])
