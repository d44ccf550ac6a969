"""The relay's housekeeping: the bucket keeps only what an upload can still use.

Relay.sweep calls `tidy` once per sweep, and each part does a bounded amount of work, so a
sweep costs about the same however large the bucket and the table grow:

- orphans: one LIST page under originals/, going on from where the last sweep stopped (the
  marker is kept in Redis, so a restarted relay goes on and two relays share the walk). An
  object no upload will ever use (its row failed or was deleted, its key is not its row's, or
  it has no row) is removed once it is older than IMGPIPE_ORPHAN_MIN_AGE;
- deleted rows whose objects were not confirmed gone (storage was down, or a job was still
  running) are purged again once IMGPIPE_PROCESSING_DEADLINE has passed since the delete;
- deleted rows with a callback_url get their webhook (status deleted) enqueued;
- with IMGPIPE_RETENTION_DAYS set, uploads older than that are deleted as DELETE would.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from imgpipe import db as uploads
from imgpipe.deletion import delete_upload, purge
from imgpipe.keys import ORIGINALS_PREFIX, upload_id_from_key
from processor.abandoned_parts import abort_abandoned_multipart
from processor.jobs import enqueue_delivery

log = logging.getLogger(__name__)

ORPHAN_PAGE = 1000  # keys per LIST request, S3's most
ROWS_PER_SWEEP = 100


def orphan_marker_key(settings) -> str:
    """The last key under originals/ that a sweep looked at; empty to start from the first."""
    return f"{settings.events_key}:orphans-after"


def tidy(relay) -> None:
    sweep_orphans(relay.settings, relay.redis, relay.db, relay.storage)
    purge_deleted(relay.settings, relay.db, relay.storage)
    announce_deletions(relay)
    apply_retention(relay.settings, relay.db, relay.storage)
    abort_abandoned_multipart(relay)


def sweep_orphans(settings, connection, db, storage, page: int = ORPHAN_PAGE) -> list[str]:
    """Look at the next page of originals and remove those no upload will use; returns their keys."""
    marker = orphan_marker_key(settings)
    listed = storage.list_after(ORIGINALS_PREFIX, (connection.get(marker) or b"").decode(), page)
    cutoff = uploads.utcnow() - timedelta(seconds=settings.orphan_min_age)
    old = [key for key, written in listed if written < cutoff]
    rows = uploads.rows_by_id(db, [upload_id for upload_id in map(upload_id_from_key, old) if upload_id])
    orphans = [key for key in old if not _in_use(key, rows)]
    if orphans:
        storage.remove(orphans)
        log.info("removed %s original(s) no upload will use: %s", len(orphans), ", ".join(orphans[:10]))
    connection.set(marker, listed[-1][0] if len(listed) == page else "")
    return orphans


def _in_use(key: str, rows: dict[str, dict]) -> bool:
    """An original is in use while its own row may still process it or serve it."""
    row = rows.get(upload_id_from_key(key) or "")
    return row is not None and row["key"] == key and row["status"] in (
        uploads.PENDING, uploads.PROCESSING, uploads.COMPLETED)


def purge_deleted(settings, db, storage) -> None:
    cutoff = uploads.utcnow() - timedelta(seconds=settings.processing_deadline)
    for row in uploads.unpurged_deleted_before(db, cutoff, ROWS_PER_SWEEP):
        purge(db, storage, row, settings.derivative_presets)
        log.info("upload %s: objects of the deleted upload removed again", row["id"])


def announce_deletions(relay) -> None:
    for row in uploads.deleted_with_callback_waiting(relay.db, ROWS_PER_SWEEP):
        if enqueue_delivery(relay.webhooks, relay.settings, row["id"]):
            log.info("upload %s: webhook of its deletion enqueued", row["id"])


def apply_retention(settings, db, storage) -> None:
    if settings.retention_days <= 0:
        return
    cutoff = uploads.utcnow() - timedelta(days=settings.retention_days)
    for row in uploads.created_before(db, cutoff, ROWS_PER_SWEEP):
        delete_upload(db, storage, row["id"], settings.derivative_presets)
        log.info("upload %s: deleted, older than IMGPIPE_RETENTION_DAYS (%g)", row["id"], settings.retention_days)
