"""The jobs workers run on an upload's row (processor.jobs puts them on the queue): processing a
new upload, and the lifecycle it shares with processor.reprocess's job, written once here.

Every such job goes claim → check → derive → write → complete:

- claim: the processing job moves its row to processing, counting the attempt; a reprocess job
  re-reads a row that is already final. A duplicate finds nothing to claim and does nothing.
- check: the original is read once and checked against what its upload URL signed.
- derive: the presets' pictures and the placeholder, judged by the moderation model when the
  row is becoming completed.
- write: every object made, at once.
- complete: ONE conditional UPDATE to the final state, carrying all the job learnt on the way
  (size, placeholder, what the derivatives weigh, the verdict); or the same one UPDATE to failed,
  with its code.

The row is the source of truth, so the order matters: nothing claims to be complete before its
objects exist; a job whose upload was deleted while it ran loses its final UPDATE and removes what
it wrote; an original refused for what it contains is removed as soon as the row says why. A job's
run thus makes at most two UPDATEs on its row: the claim, then the final state (or, in an outage
of storage or the database, its attempt given back before RQ tries again). A row that ends with a
callback URL gets its webhook delivery enqueued; a reprocess sends none.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Callable, NamedTuple

from imgpipe import uploads
from imgpipe.deletion import remove_upload_objects
from imgpipe.engines import DatabaseUnavailable
from imgpipe.error_codes import UploadFailure
from imgpipe.formats import content_type
from imgpipe.keys import content_version, derivative_key
from imgpipe.presets import Preset, Presets
from imgpipe.storage import StorageUnavailable
from processor.imaging import Derivatives, ImageRejected, make_derivatives
from processor.jobs import enqueue_delivery
from processor.moderation import Verdict
from processor.originals import read_original
from processor.resources import Resources, resources

log = logging.getLogger(__name__)

SKIPPED = "skipped"  # what a job answers when the row was not its to finish
# Every derivative's key carries its content's version, so its bytes never change: any cache may
# keep it for a year. Written in either delivery mode, so switching modes rewrites nothing; a
# presigned URL overrides it (imgpipe.storage.RESULT_HEADERS) in private mode.
IMMUTABLE = "public, max-age=31536000, immutable"


def _go_on() -> None:
    """A processing job holds still for nothing."""


@dataclass(frozen=True)
class Work:
    """What one job makes of a row it holds; the lifecycle is the same for every job."""

    presets: tuple[Preset, ...]  # made from the original; none on a completed row: its placeholder if it lacks one
    stored: dict[str, dict[str, str]]  # what the row names once the job completes: preset -> format -> recipe version
    delete: tuple[str, ...] = ()  # object keys removed once the new ones are written (reprocess --prune)
    derive: Callable[..., Derivatives] = make_derivatives  # or the reprocess helper's, at nice 19
    give_way: Callable[[], None] = _go_on  # called before each step: a reprocess job waits there for uploads


class Ended(NamedTuple):
    """Where a job left the row: a reprocess answers its command from it."""

    status: str  # the row's status as the job left it: completed, failed, deleted, or SKIPPED
    code: str | None = None  # why it failed


def process_upload(upload_id: str) -> str:
    """Process one upload; returns the row's final status (or 'skipped' if it already was final)."""
    res = resources()
    row = uploads.claim_for_processing(res.db, upload_id)
    if row is None:
        log.info("upload %s: already final, nothing to do", upload_id)
        remove_if_deleted(res, upload_id)
        return SKIPPED
    log.info("upload %s: processing (attempt %s)", upload_id, row["attempts"])
    if row["attempts"] > res.settings.max_attempts:
        return _fail(res, row, UploadFailure.INTERNAL,
                     f"gave up after {row['attempts'] - 1} attempts that did not finish").status
    return make_and_record(res, row, everything_asked(row, res.settings.derivative_presets)).status


def everything_asked(row: dict, presets: Presets, **how) -> Work:
    """Every preset the upload asked for, in its formats: what a row becoming completed gets
    (`how`: Work's derive and give_way, for a reprocess)."""
    wanted, formats = uploads.requested_presets(row), uploads.output_formats(row)
    return Work(presets.chosen(wanted), presets.versions(wanted, formats), **how)


def make_and_record(res: Resources, row: dict, work: Work) -> Ended:
    """check → derive → write → complete, for a row this job holds: claimed (processing), or final
    for a reprocess (failed: tried again; completed: some presets made again). What goes wrong on
    the way ends the row failed with its code, or is raised for RQ to try again."""
    claimed = row["status"] == uploads.PROCESSING
    try:
        return _check_derive_write_complete(res, row, work)
    except ImageRejected as rejected:
        return _fail(res, row, rejected.code, rejected.message)
    except MemoryError:
        # The worker's memory cap (processor.worker.cap_memory): another try would need as much.
        return _fail(res, row, UploadFailure.OUT_OF_MEMORY,
                     "processing this picture needs more memory than a job may use"
                     f" (IMGPIPE_JOB_MEMORY_MB={res.settings.job_memory_mb})")
    except (StorageUnavailable, DatabaseUnavailable) as error:
        # An outage is not the upload's fault: a claimed attempt is given back (over a new
        # connection when the database dropped the old one) and RQ tries again later.
        if claimed:
            uploads.release_attempt(res.db, row["id"])
        log.warning("upload %s: %s unavailable (%s), will retry", row["id"],
                    "storage" if isinstance(error, StorageUnavailable) else "database", error)
        raise
    except Exception as error:
        if claimed and row["attempts"] >= res.settings.max_attempts:
            log.exception("upload %s: attempt %s failed, no attempts left", row["id"], row["attempts"])
            return _fail(res, row, UploadFailure.INTERNAL, f"{type(error).__name__}: {error}")
        log.warning("upload %s: job failed (%s), will retry", row["id"], error)
        raise


def _check_derive_write_complete(res: Resources, row: dict, work: Work) -> Ended:
    derivatives = size = verdict = None
    if work.presets or row["status"] != uploads.COMPLETED or not row["blurhash"]:
        work.give_way()
        data = _check_original(res, row)
        size = len(data)
        derivatives = work.derive(data, max_pixels=res.settings.max_pixels, formats=uploads.output_formats(row),
                                  presets=work.presets)
        verdict = _judge(res, row, derivatives)
        if verdict is not None and verdict.flagged and res.moderator.rejects:
            # Before any derivative is written: a rejected upload never has any.
            return _fail(res, row, UploadFailure.REJECTED_BY_MODERATION,
                         f"the moderation model scored it {verdict.score:.4f},"
                         f" at or over the threshold {verdict.threshold}", verdict)
    written = {}
    if derivatives is not None:
        work.give_way()
        written = write_derivatives(res, row, derivatives, work.stored)
    if work.delete:
        work.give_way()
        res.storage.remove(list(work.delete))
    work.give_way()
    return _complete(res, row, work, derivatives, size=size, written=written, verdict=verdict)


def _check_original(res: Resources, row: dict) -> bytes:
    """The original's bytes, checked against what its upload URL signed; ImageRejected when it
    is refused or no longer in the bucket."""
    data = read_original(res.storage, row, res.settings.max_upload_bytes)
    if data is not None:
        return data
    if row["status"] == uploads.FAILED:
        raise ImageRejected(UploadFailure.MISSING_ORIGINAL, "the original was removed after it failed"
                                                            f" ({row['error_code']}: {row['error_message']})")
    raise ImageRejected(UploadFailure.MISSING_ORIGINAL, "the original is not in the bucket")


def _judge(res: Resources, row: dict, derivatives: Derivatives) -> Verdict | None:
    """The moderation model's verdict on a row becoming completed (None when moderation is off,
    or the row is completed already and keeps the verdict it has)."""
    if res.moderator is None or row["status"] == uploads.COMPLETED:
        return None
    verdict = res.moderator.judge(derivatives.by_format())
    if verdict.flagged:
        log.info("upload %s: flagged by moderation (score %.4f, threshold %s)", row["id"], verdict.score,
                 verdict.threshold)
    return verdict


def write_derivatives(res: Resources, row: dict, derivatives: Derivatives,
                      versions: dict[str, dict[str, str]]) -> dict[str, dict[str, dict]]:
    """Every object made, written at once on the writer threads under its content-versioned key,
    with its type and IMMUTABLE; returns, once all are stored, what the row is to record of each
    (preset -> format -> uploads.derivative_entry). An object whose key the row already names
    holds these very bytes and is not written again: no key handed out is ever rewritten."""
    named = set(uploads.derivative_keys(row))
    entries, writes = {}, []
    for name, by_format in derivatives.made.items():
        for fmt, encoded in by_format.items():
            version = content_version(encoded)
            key = derivative_key(name, row["id"], fmt, version)
            entries.setdefault(name, {})[fmt] = uploads.derivative_entry(versions[name][fmt], version,
                                                                         *derivatives.sizes[name], len(encoded))
            if key not in named:
                writes.append(res.writers.submit(res.storage.write, key, encoded, content_type(fmt), IMMUTABLE))
    for write in writes:
        write.result()
    return entries


def _complete(res: Resources, row: dict, work: Work, derivatives: Derivatives | None, *, size: int | None,
             written: dict[str, dict[str, dict]], verdict: Verdict | None) -> Ended:
    """The job's one UPDATE to completed, once every object it names exists: a row being
    processed or tried again completes; a completed one gets its new objects recorded, the
    objects they replace noted as superseded first (released after IMGPIPE_SUPERSEDED_GRACE,
    processor.release), so no object is ever left unnamed. Lost when the upload was deleted
    meanwhile, whose objects this job then removes."""
    upload_id = row["id"]
    record = _record(row, work, written)
    after = {**row, "derivatives": json.dumps(record)}
    kept, pruned = set(uploads.derivative_keys(after)), set(work.delete)
    uploads.supersede(res.db, upload_id, [key for key in uploads.derivative_keys(row)
                                          if key not in kept and key not in pruned])
    weight = _derivative_bytes(res, after)
    placeholder = ({"blurhash": derivatives.blurhash, "dominant_color": derivatives.dominant_color}
                   if derivatives else {})
    if row["status"] == uploads.COMPLETED:
        won = uploads.record_reprocessed(res.db, upload_id, record, derivative_bytes=weight, **placeholder)
    else:
        won = uploads.mark_completed(res.db, upload_id, size=size, width=derivatives.width, height=derivatives.height,
                                     image_format=derivatives.format, derivatives=record, derivative_bytes=weight,
                                     moderation=dataclasses.asdict(verdict) if verdict else None,
                                     from_status=row["status"], **placeholder)
    if not won:
        written_keys = uploads.derivative_keys({**row, "derivatives": json.dumps(written)})
        return Ended(uploads.DELETED if remove_if_deleted(res, upload_id, written_keys) else SKIPPED)
    if row["status"] == uploads.PROCESSING:
        _announce(res, row)
    if row["status"] != uploads.COMPLETED:
        log.info("upload %s: completed (%s %sx%s, %s bytes)", upload_id, derivatives.format, derivatives.width,
                 derivatives.height, size)
    return Ended(uploads.COMPLETED)


def _record(row: dict, work: Work, written: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """The derivatives JSON once the job completes: every object `work.stored` names, as this job
    wrote it or, for those it did not make again (a reprocess makes only some), as the row has it."""
    current = uploads.derivative_record(row)
    return {name: {fmt: written[name][fmt] if fmt in written.get(name, {}) else current[name][fmt] for fmt in formats}
            for name, formats in work.stored.items()}


def _derivative_bytes(res: Resources, row: dict) -> int:
    """What the objects the row names weigh: as recorded, or, for an object stored before sizes
    were recorded, asked of the store."""
    return sum(obj.bytes if obj.bytes is not None else res.storage.size_of(obj.key) or 0
               for by_format in uploads.derivative_objects(row).values() for obj in by_format.values())


def _fail(res: Resources, row: dict, code: str, message: str, verdict: Verdict | None = None) -> Ended:
    """The job's one UPDATE to failed: a row being processed fails, a failed one tried again keeps
    the newer reason; a completed one keeps what it has, and nothing is written."""
    if row["status"] == uploads.COMPLETED:
        log.warning("upload %s: its original is refused now (%s: %s), left as it was", row["id"], code, message)
        return Ended(uploads.FAILED, code)
    moderation = dataclasses.asdict(verdict) if verdict else None
    if row["status"] == uploads.FAILED:
        won = uploads.replace_failure(res.db, row["id"], code, message, moderation=moderation)
    else:
        won = uploads.mark_failed(res.db, row["id"], code, message, moderation=moderation)
    if won and UploadFailure(code).rejects_content:
        _remove_rejected_original(res, row)
    if won and row["status"] == uploads.PROCESSING:
        _announce(res, row)
    log.info("upload %s: failed %s: %s", row["id"], code, message)
    return Ended(uploads.FAILED, code)


def _remove_rejected_original(res: Resources, row: dict) -> None:
    """Logged, never raised, when storage refuses: the sweeper removes the originals of failed rows."""
    try:
        res.storage.remove([row["key"]])
        log.info("upload %s: rejected original removed", row["id"])
    except StorageUnavailable as error:
        log.warning("upload %s: could not remove its rejected original yet (%s)", row["id"], error)


def remove_if_deleted(res: Resources, upload_id: str, written: list[str] = ()) -> bool:
    """When the upload was deleted while this job held it, remove every object it names and those
    this job `written`. The DELETE removed what was there then; this removes what came after."""
    row = uploads.get_upload(res.db, upload_id)
    if row is None or row["status"] != uploads.DELETED:
        return False
    remove_upload_objects(res.db, res.storage, row, also=list(written))
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
