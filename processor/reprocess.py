"""The reprocess job: bring one stored upload's objects in line with the presets in use.

`imgpipe reprocess` enqueues one job per upload that needs it, on a queue of its own that
workers take last (imgpipe.queues). A job re-reads the row and does only what is still
missing, so running one twice, or after the command was stopped and started again, makes
nothing twice. New objects are written first; pruned ones are deleted next; the row is
updated last, so the row never names an object that is not there yet, and a job cut short
is simply done again.

An upload that failed may be tried again (after IMGPIPE_MAX_PIXELS was raised, say): if it
now succeeds it becomes completed, the one way a final status changes; if not, it keeps its
status with the newer reason. No webhook is sent for a reprocess.
"""

from __future__ import annotations

import logging

from rq import Queue, Retry

from imgpipe import db as uploads
from imgpipe.keys import derivative_key
from imgpipe.presets import Presets, Reprocessing, reprocessing
from processor.imaging import ImageRejected, make_derivatives
from processor.jobs import enqueue_once
from processor.resources import Resources, resources
from processor.tasks import write_derivatives

log = logging.getLogger(__name__)

JOB_TIMEOUT = 300
RETRY_INTERVALS = [5, 30, 120]  # storage outages; an image's own problems are answers, not errors
# What a job answers, for the command's summary.
REMADE, PRUNED, PLACEHOLDER_ADDED, COMPLETED, STILL_FAILED, REFUSED, CURRENT, SKIPPED = (
    "remade", "pruned", "placeholder added", "completed", "still failed", "refused", "current", "skipped")
PRESETS_DIFFER = "presets differ"


def reprocess_job_id(upload_id: str) -> str:
    return f"reprocess-{upload_id}"


def enqueue_reprocess(queue: Queue, upload_id: str, presets_version: str, only: list[str] | None, prune: bool, *,
                      replace_started: bool = False) -> bool:
    return enqueue_once(queue, "processor.reprocess.reprocess_upload", upload_id,
                        args=(upload_id, presets_version, only, prune), job_id=reprocess_job_id(upload_id),
                        timeout=JOB_TIMEOUT, retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                        description=f"reprocess upload {upload_id}", replace_started=replace_started)


def work_for(row: dict, presets: Presets, *, only: tuple[str, ...] | None, prune: bool) -> Reprocessing | None:
    """What the upload needs, or None when it has it all: every object of the presets in use
    (of `only`, when given) at its current version, a placeholder, and with `prune` nothing
    more. A failed upload needs everything."""
    failed = row["status"] == uploads.FAILED
    work = reprocessing(presets, stored=uploads.stored_derivatives(row), wanted=uploads.requested_presets(row),
                        upload_formats=uploads.output_formats(row), only=None if failed else only, prune=prune)
    return work if failed or work.needed or not row["blurhash"] else None


def reprocess_upload(upload_id: str, presets_version: str, only: list[str] | None, prune: bool) -> str:
    """One upload brought in line with the presets; answers what was done (REMADE, ...).

    A worker whose presets are not the ones the command read answers PRESETS_DIFFER and does
    nothing: objects made by other presets than asked would be recorded under the wrong versions.
    """
    res = resources()
    presets = res.settings.derivative_presets
    if presets.version != presets_version:
        log.warning("upload %s: not reprocessed, this worker's presets are version %s, the command's %s",
                    upload_id, presets.version, presets_version)
        return PRESETS_DIFFER
    row = uploads.get_upload(res.db, upload_id)
    if row is None or row["status"] not in (uploads.COMPLETED, uploads.FAILED):
        return SKIPPED
    work = work_for(row, presets, only=tuple(only) if only else None, prune=prune)
    if work is None:
        return CURRENT
    if row["status"] == uploads.FAILED:
        return _retry_failed(res, row, presets)
    placeholder = {}
    if work.make or not row["blurhash"]:
        derivatives = _derive(res, row, presets, work)
        if derivatives is None:
            return REFUSED
        write_derivatives(res, upload_id, derivatives)
        placeholder = {"blurhash": derivatives.blurhash, "dominant_color": derivatives.dominant_color}
    for name, fmt in work.delete:
        res.storage.delete(derivative_key(name, upload_id, fmt))
    uploads.record_reprocessed(res.db, upload_id, work.after, **placeholder)
    log.info("upload %s: reprocessed (made %s, deleted %s)", upload_id,
             ", ".join(work.make) or "nothing", ", ".join(f"{name}/{fmt}" for name, fmt in work.delete) or "nothing")
    return REMADE if work.make else PRUNED if work.delete else PLACEHOLDER_ADDED


def _derive(res: Resources, row: dict, presets: Presets, work: Reprocessing):
    """The presets in `work.make` made again from the original (none when only the placeholder
    is missing); None when the original is refused now (a lower limit, say): the upload keeps
    what it has."""
    data = res.storage.read(row["key"])
    try:
        return make_derivatives(data, max_pixels=res.settings.max_pixels, formats=uploads.output_formats(row),
                                presets=tuple(presets.get(name) for name in work.make))
    except ImageRejected as rejected:
        log.warning("upload %s: its original is refused now (%s), left as it was", row["id"], rejected)
        return None


def _retry_failed(res: Resources, row: dict, presets: Presets) -> str:
    upload_id = row["id"]
    size = res.storage.size_of(row["key"])
    if size is None:
        uploads.replace_failure(res.db, upload_id, "missing_original", "the original is not in the bucket")
        return STILL_FAILED
    wanted, formats = uploads.requested_presets(row), uploads.output_formats(row)
    try:
        if size > res.settings.max_upload_bytes:
            raise ImageRejected("too_large", f"the upload is {size} bytes; the limit is {res.settings.max_upload_bytes}")
        derivatives = make_derivatives(res.storage.read(row["key"]), max_pixels=res.settings.max_pixels,
                                       formats=formats, presets=presets.chosen(wanted))
    except ImageRejected as rejected:
        uploads.replace_failure(res.db, upload_id, rejected.code, rejected.message)
        return STILL_FAILED
    write_derivatives(res, upload_id, derivatives)
    uploads.mark_completed(res.db, upload_id, size=size, width=derivatives.width, height=derivatives.height,
                           image_format=derivatives.format, derivatives=presets.versions(wanted, formats),
                           blurhash=derivatives.blurhash, dominant_color=derivatives.dominant_color,
                           from_status=uploads.FAILED)
    log.info("upload %s: completed on reprocessing after it had failed", upload_id)
    return COMPLETED
