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
from imgpipe.engines import DatabaseUnavailable
from imgpipe.failure_codes import REJECTED_CONTENT
from imgpipe.formats import content_type
from imgpipe.keys import derivative_key
from imgpipe.storage import StorageUnavailable
from processor.imaging import Derivatives, ImageRejected, make_derivatives
from processor.jobs import enqueue_delivery
from processor.moderation import REJECTED
from processor.originals import read_original
from processor.resources import Resources, resources

log = logging.getLogger(__name__)

# The job needed more than the worker's memory cap: the original is kept, for a reprocess under a larger one.
OUT_OF_MEMORY = "out_of_memory"


def process_upload(upload_id: str) -> str:
    """Process one upload; returns the row's final status (or 'skipped' if it already was final)."""
    res = resources()
    row = uploads.claim_for_processing(res.db, upload_id)
    if row is None:
        log.info("upload %s: already final, nothing to do", upload_id)
        remove_if_deleted(res, upload_id)
        return "skipped"
    log.info("upload %s: processing (attempt %s)", upload_id, row["attempts"])
    if row["attempts"] > res.settings.max_attempts:
        return _fail(res, row, "internal", f"gave up after {row['attempts'] - 1} attempts that did not finish")
    try:
        return _derive(res, row)
    except ImageRejected as rejected:
        return _fail(res, row, rejected.code, rejected.message)
    except MemoryError:
        # The worker's memory cap (processor.worker.cap_memory): another try would need as much.
        return _fail(res, row, OUT_OF_MEMORY, "processing this picture needs more memory than a job may use"
                                              f" (IMGPIPE_JOB_MEMORY_MB={res.settings.job_memory_mb})")
    except (StorageUnavailable, DatabaseUnavailable) as error:
        # An outage is not the upload's fault: the attempt is given back (over a new connection
        # when the database dropped the old one) and RQ tries again later.
        uploads.release_attempt(res.db, upload_id)
        log.warning("upload %s: %s unavailable (%s), will retry", upload_id,
                    "storage" if isinstance(error, StorageUnavailable) else "database", error)
        raise
    except Exception as error:
        if row["attempts"] >= res.settings.max_attempts:
            log.exception("upload %s: attempt %s failed, no attempts left", upload_id, row["attempts"])
            return _fail(res, row, "internal", f"{type(error).__name__}: {error}")
        log.warning("upload %s: attempt %s failed (%s), will retry", upload_id, row["attempts"], error)
        raise


def _derive(res: Resources, row: dict) -> str:
    upload_id = row["id"]
    data = read_original(res.storage, row, res.settings.max_upload_bytes)
    if data is None:
        return _fail(res, row, "missing_original", "the original is not in the bucket")
    presets = res.settings.derivative_presets
    wanted, formats = uploads.requested_presets(row), uploads.output_formats(row)
    derivatives = make_derivatives(data, max_pixels=res.settings.max_pixels, formats=formats,
                                   presets=presets.chosen(wanted))
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
    uploads.record_derivative_bytes(res.db, upload_id, write_derivatives(res, upload_id, derivatives))
    if uploads.mark_completed(res.db, upload_id, size=len(data), width=derivatives.width,
                              height=derivatives.height, image_format=derivatives.format,
                              derivatives=presets.versions(wanted, formats), blurhash=derivatives.blurhash,
                              dominant_color=derivatives.dominant_color):
        _announce(res, row)
    elif remove_if_deleted(res, upload_id):
        return uploads.DELETED
    log.info("upload %s: completed (%s %sx%s, %s bytes)", upload_id, derivatives.format,
             derivatives.width, derivatives.height, len(data))
    return uploads.COMPLETED


def write_derivatives(res: Resources, upload_id: str, derivatives: Derivatives) -> int:
    """Every object made, written at once on the writer threads; returns, once all are stored,
    how many bytes they are."""
    made = [(derivative_key(name, upload_id, fmt), encoded, content_type(fmt))
            for name, by_format in derivatives.made.items() for fmt, encoded in by_format.items()]
    writes = [res.writers.submit(res.storage.write, target, encoded, mime) for target, encoded, mime in made]
    for write in writes:
        write.result()
    return sum(len(encoded) for _, encoded, _ in made)


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


def remove_if_deleted(res: Resources, upload_id: str) -> bool:
    """When the upload was deleted while this job held it, remove every object it may have written.
    The DELETE removed what was there then; this removes what came after."""
    row = uploads.get_upload(res.db, upload_id)
    if row is None or row["status"] != uploads.DELETED:
        return False
    res.storage.remove(upload_keys(row, res.settings.derivative_presets))
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
