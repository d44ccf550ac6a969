"""Housekeeping: the relay's sweep, as a list of named steps.

Events are the fast path, not the only one. Every IMGPIPE_SWEEP_INTERVAL the relay calls
`Housekeeping.sweep`, the one loop that runs STEPS in their order, each when its cadence says it
is due, and logs what each did when it did something. A step is a plain function of the
Housekeeping (connections, settings, the page of originals/ this sweep listed, where each
step's rows went on from) that does a bounded amount of work and returns how many things it
did: however many rows wait and however large the bucket grows, a sweep costs about the same,
and none costs a request per pending row. Adding a step is one line in STEPS, naming its
function (in a module of its own if it likes), what its count counts, its bound and cadence.

originals/ is listed once per sweep, by `Originals`, and that one LIST feeds both the steps
that read the bucket (missed events, orphans).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator

import redis

from imgpipe import uploads
from imgpipe.deletion import delete_upload, purge
from imgpipe.engines import Database
from imgpipe.error_codes import UploadFailure
from imgpipe.keys import ORIGINALS_PREFIX, originals_made_from, upload_id_from_key
from imgpipe.queues import make_webhook_queue
from imgpipe.settings import Settings
from imgpipe.storage import LIST_PAGE, Storage
from processor.abandoned_parts import ABORTS_PER_STEP, abort_abandoned_multipart
from processor.jobs import enqueue_delivery
from processor.release import RELEASES_PER_STEP, release_superseded

log = logging.getLogger(__name__)

ROWS_PER_STEP = 500  # rows a step takes from the database per sweep
DELETIONS_PER_STEP = 100  # deleted or retired uploads a step removes per sweep (each a DELETE request)
CLOCK_SKEW = timedelta(seconds=60)  # how far the API hosts' clocks, which time the ids, may disagree


@dataclass(frozen=True)
class Step:
    """One named piece of housekeeping. `run` does its bounded work and returns how many `done`
    there were; it runs every sweep, or at most once every `every` seconds."""

    name: str
    run: Callable[[Housekeeping], int]
    done: str
    page: str
    every: float = 0.0


@dataclass
class Pass:
    """One walk through the originals a pending row may have: from the oldest pending upload's
    time to when the walk began (each give or take CLOCK_SKEW). `uploaded` holds the pending
    uploads it listed an original for; an older pending row that it did not list has none."""

    started_at: datetime
    end: str
    after: str
    uploaded: set[str] = field(default_factory=set)


@dataclass
class Listed:
    """What one sweep's LIST found: keys under originals/ with when each was written, and, when
    it was a page of the pending pass, the pending rows (id, updated_at) those keys belong to."""

    objects: list[tuple[str, datetime]]
    pending: list[dict]


class Originals:
    """originals/, listed once per sweep, shared by the steps that read the bucket.

    Keys sort by when their upload was made (imgpipe.keys.new_upload_id), so a pass from the
    oldest pending upload's time to now names every original a pending row may have, without a
    request per row. It is short (uploads made in the last URL lifetime and grace) and starts
    again as soon as it ends, so a missed event waits a few sweeps. Orphans may lie anywhere,
    so the orphan step also needs a walk over all of originals/, which is long; its position is
    kept in Redis, so a restarted relay goes on and two relays share it. While a pass is under
    way the sweeps' one LIST goes to each walk in turn, else all to the walk over the whole.
    """

    def __init__(self, settings: Settings, connection: redis.Redis, db: Database, storage: Storage,
                 page: int = LIST_PAGE):
        self.settings, self.redis, self.db, self.storage, self.page = settings, connection, db, storage, page
        self.min_age = timedelta(seconds=settings.sweep_min_age)
        self.current: Pass | None = None
        self.last_complete: Pass | None = None
        self.pass_turn = False

    def orphan_marker_key(self) -> str:
        """The last key of the walk over all of originals/ so far; empty to start from the first."""
        return f"{self.settings.events_key}:orphans-after"

    def list_next(self) -> Listed:
        """One LIST request: the next page of the pending pass or of the walk over the whole."""
        self.pass_turn = not self.pass_turn
        if self.pass_turn:
            self.current = self.current or self.begin_pass()  # begun as it is first listed
            if self.current is not None:
                return self.list_pass(self.current)
        marker = self.orphan_marker_key()
        objects = self.storage.list_after(ORIGINALS_PREFIX, (self.redis.get(marker) or b"").decode(), self.page)
        self.redis.set(marker, objects[-1][0] if len(objects) == self.page else "")
        return Listed(objects, [])

    def begin_pass(self) -> Pass | None:
        """A pass over the originals of every upload still pending, or None when no pending
        upload is old enough to need one (younger ones still wait for their event)."""
        oldest = uploads.oldest_pending_at(self.db)
        now = uploads.utcnow()
        if oldest is None or now - oldest < self.min_age:
            return None
        return Pass(started_at=now, end=originals_made_from(now + CLOCK_SKEW),
                    after=originals_made_from(oldest - CLOCK_SKEW))

    def list_pass(self, current: Pass) -> Listed:
        objects = self.storage.list_after(ORIGINALS_PREFIX, current.after, self.page)
        in_pass = [key for key, _ in objects if key < current.end]
        pending = uploads.pending_with_ids(self.db, [upload_id for upload_id in map(upload_id_from_key, in_pass)
                                                     if upload_id])
        current.uploaded |= {row["id"] for row in pending}
        if len(in_pass) < self.page:
            self.last_complete, self.current = current, None
        else:
            current.after = in_pass[-1]
        return Listed(objects, pending)


class Schedule:
    """When each step is due: at every sweep, or once `every` seconds have passed since it last ran."""

    def __init__(self, steps: tuple[Step, ...], clock: Callable[[], float] = time.monotonic):
        self.steps, self.clock = steps, clock
        self.last_run: dict[str, float] = {}

    def due(self) -> Iterator[Step]:
        for step in self.steps:
            now, last = self.clock(), self.last_run.get(step.name)
            if last is None or now - last >= step.every:
                self.last_run[step.name] = now
                yield step


class Housekeeping:
    """The state the steps share from one sweep to the next, and the loop that runs them."""

    def __init__(self, settings: Settings, connection: redis.Redis, db: Database, storage: Storage,
                 drive: Callable[..., bool], *, steps: tuple[Step, ...] | None = None, list_page: int = LIST_PAGE):
        self.settings, self.redis, self.db, self.storage = settings, connection, db, storage
        self.drive = drive  # drive(upload_id, reason=...): enqueue the upload unless its row is final
        self.webhooks = make_webhook_queue(connection, settings)
        self.originals = Originals(settings, connection, db, storage, list_page)
        self.min_age = timedelta(seconds=settings.sweep_min_age)
        self.schedule = Schedule(STEPS if steps is None else steps)
        self.after: dict[str, tuple[str, str] | None] = {}
        self._listed: Listed | None = None

    def sweep(self) -> dict[str, int]:
        """Run every step that is due, in order; returns how many things each that ran did."""
        self._listed = None
        done = {}
        for step in self.schedule.due():
            done[step.name] = step.run(self)
            if done[step.name]:
                log.info("sweep: %s: %s %s", step.name, done[step.name], step.done)
        return done

    def listed(self) -> Listed:
        """This sweep's page of originals/: listed by the first step that asks, once per sweep."""
        if self._listed is None:
            self._listed = self.originals.list_next()
        return self._listed

    def rows(self, step: str, query: Callable[..., list[dict]], *args, limit: int = ROWS_PER_STEP,
             column: str = "updated_at") -> list[dict]:
        """The step's next page of `query`'s rows (ordered by column, id): each sweep goes on after
        the last row of the one before, so rows that stay (driven, waiting for a worker) never
        hold the others back, and every row is reached in turn however many there are."""
        rows = query(self.db, *args, limit, after=self.after.get(step))
        self.after[step] = uploads.page_end(rows, limit, column)
        return rows


def drive_missed_events(house: Housekeeping) -> int:
    """Pending uploads whose original the listing found, at least IMGPIPE_SWEEP_MIN_AGE old:
    their event was missed, and they are driven."""
    old_enough = uploads.timestamp(uploads.utcnow() - house.min_age)
    driven = [row["id"] for row in house.listed().pending if row["updated_at"] < old_enough]
    return sum(1 for upload_id in driven if house.drive(upload_id, reason="missed event"))


def expire_unused_uploads(house: Housekeeping) -> int:
    """Pending uploads whose URL expired more than IMGPIPE_UPLOAD_GRACE ago unused fail
    `upload_expired`. The last complete pass began after their URLs could last be used and
    covers every id made since the oldest pending upload, so one it did not list has no
    original, with no request of its own."""
    last = house.originals.last_complete
    if last is None:
        return 0
    expired = last.started_at - timedelta(seconds=house.settings.upload_grace)
    began = uploads.timestamp(last.started_at)
    failed = 0
    for row in house.rows("expired", uploads.pending_expired_before, expired, column="upload_expires_at"):
        if row["id"] in last.uploaded or row["created_at"] >= began:  # the pass knew nothing of it yet
            continue
        if uploads.mark_failed(house.db, row["id"], UploadFailure.UPLOAD_EXPIRED,
                               "no file was uploaded before the upload URL expired"):
            failed += 1
            log.info("upload %s: failed upload_expired", row["id"])
            if row["callback_url"]:
                enqueue_delivery(house.webhooks, house.settings, row["id"])
    return failed


def redrive_stuck_processing(house: Housekeeping) -> int:
    """Rows in processing for IMGPIPE_SWEEP_MIN_AGE are driven again: their job is enqueued anew
    when it is gone (lost with Redis), or replaced when it has looked started for longer than
    IMGPIPE_PROCESSING_DEADLINE (its worker died with it)."""
    rows = house.rows("stuck", uploads.in_status_older_than, uploads.PROCESSING, house.min_age)
    deadline = uploads.timestamp(uploads.utcnow() - timedelta(seconds=house.settings.processing_deadline))
    return sum(1 for row in rows if house.drive(
        row["id"], reason="stuck in processing" if row["updated_at"] < deadline else "processing, its job lost"))


def enqueue_owed_webhooks(house: Housekeeping) -> int:
    """Final rows (IMGPIPE_SWEEP_MIN_AGE old) and deleted ones whose webhook is still pending get
    its delivery enqueued, unless a job is on its way: a deletion is announced this way, and a
    delivery job lost with Redis is asked for again."""
    rows = house.rows("webhooks", uploads.callbacks_owed, house.min_age)
    return sum(1 for row in rows if enqueue_delivery(house.webhooks, house.settings, row["id"]))


def remove_orphans(house: Housekeeping) -> int:
    """Originals on the sweep's page that no upload will use (their row failed or was deleted,
    their key is not their row's, or they have no row) are removed once older than
    IMGPIPE_ORPHAN_MIN_AGE."""
    cutoff = uploads.utcnow() - timedelta(seconds=house.settings.orphan_min_age)
    old = [key for key, written in house.listed().objects if written < cutoff]
    rows = uploads.rows_by_id(house.db, [upload_id for upload_id in map(upload_id_from_key, old) if upload_id])
    orphans = [key for key in old if not _in_use(key, rows)]
    if orphans:
        house.storage.remove(orphans)
        log.info("removed %s original(s) no upload will use: %s", len(orphans), ", ".join(orphans[:10]))
    return len(orphans)


def _in_use(key: str, rows: dict[str, dict]) -> bool:
    """An original is in use while its own row may still process it or serve it."""
    row = rows.get(upload_id_from_key(key) or "")
    return row is not None and row["key"] == key and row["status"] in (
        uploads.PENDING, uploads.PROCESSING, uploads.COMPLETED)


def purge_deleted(house: Housekeeping) -> int:
    """Deleted rows whose objects were not confirmed gone (storage was down, or a job was still
    running) have them removed again once IMGPIPE_PROCESSING_DEADLINE has passed since."""
    cutoff = uploads.utcnow() - timedelta(seconds=house.settings.processing_deadline)
    rows = uploads.unpurged_deleted_before(house.db, cutoff, DELETIONS_PER_STEP)
    for row in rows:
        purge(house.db, house.storage, row, house.settings.derivative_presets)
        log.info("upload %s: objects of the deleted upload removed again", row["id"])
    return len(rows)


def apply_retention(house: Housekeeping) -> int:
    """With IMGPIPE_RETENTION_DAYS set, uploads older than that are deleted as DELETE would."""
    if house.settings.retention_days <= 0:
        return 0
    cutoff = uploads.utcnow() - timedelta(days=house.settings.retention_days)
    rows = uploads.created_before(house.db, cutoff, DELETIONS_PER_STEP)
    for row in rows:
        delete_upload(house.db, house.storage, row["id"], house.settings.derivative_presets)
        log.info("upload %s: deleted, older than IMGPIPE_RETENTION_DAYS (%g)", row["id"], house.settings.retention_days)
    return len(rows)


# Every step of the sweep, in the order each sweep runs them. The expiry step reads the pass
# the missed-events step's listing may just have completed, so it comes after it.
STEPS = (
    Step("missed events", drive_missed_events, "upload(s) driven", "the sweep's LIST of originals/"),
    Step("expired rows", expire_unused_uploads, "upload(s) failed upload_expired", f"{ROWS_PER_STEP} rows, in turn"),
    Step("stuck processing", redrive_stuck_processing, "upload(s) driven again", f"{ROWS_PER_STEP} rows, in turn"),
    Step("webhooks owed", enqueue_owed_webhooks, "webhook delivery job(s) enqueued", f"{ROWS_PER_STEP} rows, in turn"),
    Step("orphans", remove_orphans, "original(s) removed", "the sweep's LIST of originals/"),
    Step("deleted, not purged", purge_deleted, "deleted upload(s) purged again",
         f"{DELETIONS_PER_STEP} rows", every=10.0),
    Step("retention", apply_retention, "upload(s) deleted by age", f"{DELETIONS_PER_STEP} rows", every=10.0),
    Step("abandoned multipart", abort_abandoned_multipart, "multipart upload(s) aborted",
         f"{ABORTS_PER_STEP} rows", every=10.0),
    Step("superseded", release_superseded, "superseded derivative(s) released", f"{RELEASES_PER_STEP} objects", every=10.0),
)
