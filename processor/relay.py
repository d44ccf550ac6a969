"""The relay: MinIO's events in Redis become RQ jobs, and nothing is lost on the way.

An event is moved atomically (BLMOVE) from MinIO's list to an in-flight list, turned into a
job, and only then removed from in-flight. A relay that dies in between leaves the event in
flight, and the next relay to start puts it back. Events are the fast path, not the only one:
a sweep looks for uploads whose event never came (still pending, original in the bucket), for
uploads stuck in processing, and for webhooks whose delivery job was lost, and drives them
again. Its steps are small methods of their own, each bounded, called in turn by `sweep`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis

from imgpipe import db as uploads
from imgpipe.engines import Database, DatabaseUnavailable
from imgpipe.keys import ORIGINALS_PREFIX, originals_made_from, upload_id_from_key
from imgpipe.queues import inflight_key, make_queue, make_webhook_queue, rejected_key, relayed_count_key
from imgpipe.settings import Settings
from imgpipe.storage import LIST_PAGE, Storage, StorageUnavailable
from processor.events import MalformedEvent, parse_event
from processor.housekeeping import tidy
from processor.jobs import enqueue_delivery, enqueue_processing

log = logging.getLogger(__name__)

ROWS_PER_STEP = 500  # rows a sweep step takes from the database at a time
LIST_PAGES_PER_SWEEP = 5  # LIST requests a sweep makes at most
CLOCK_SKEW = timedelta(seconds=60)  # how far the API hosts' clocks, which time the ids, may disagree


@dataclass
class ListingPass:
    """One walk through originals/, from the oldest pending upload's time to when the walk
    began, a few LIST pages per sweep. `uploaded` holds the pending uploads it found an
    original for; an older pending row that is not there had none."""

    started_at: datetime
    first: str
    end: str
    after: str
    uploaded: set[str] = field(default_factory=set)


class Relay:
    def __init__(self, settings: Settings, connection: redis.Redis, db: Database, storage: Storage):
        self.settings = settings
        self.redis = connection
        self.db = db
        self.storage = storage
        self.queue = make_queue(connection, settings)
        self.webhooks = make_webhook_queue(connection, settings)
        self.next_sweep = 0.0
        self.min_age = timedelta(seconds=settings.sweep_min_age)
        self.pages: dict[str, tuple[str, str] | None] = dict.fromkeys((uploads.PROCESSING, "callbacks", "expired"))
        self.listing: ListingPass | None = None
        self.last_listing: ListingPass | None = None

    def restore_inflight(self) -> int:
        """Put events a previous relay took but did not finish back at the head of the list."""
        moved = 0
        while self.redis.lmove(inflight_key(self.settings), self.settings.events_key, "RIGHT", "LEFT"):
            moved += 1
        if moved:
            log.info("re-driving %s event(s) left in flight", moved)
        return moved

    def relay_one(self, block_seconds: float = 1.0) -> bool:
        """Take one event, if one comes within block_seconds, and enqueue its upload."""
        raw = self.redis.blmove(self.settings.events_key, inflight_key(self.settings), block_seconds, "LEFT", "RIGHT")
        if raw is None:
            return False
        self.handle_event(raw)
        pipe = self.redis.pipeline()
        pipe.lrem(inflight_key(self.settings), 1, raw)
        pipe.incr(relayed_count_key(self.settings))
        pipe.execute()
        return True

    def handle_event(self, raw: bytes) -> None:
        try:
            records = parse_event(raw)
        except MalformedEvent as error:
            log.warning("set aside a malformed event (%s): %.200r", error, raw)
            self.redis.rpush(rejected_key(self.settings), raw)
            return
        for record in records:
            upload_id = upload_id_from_key(record.key)
            if record.bucket != self.settings.s3_bucket_name or upload_id is None:
                log.info("ignored an event for %s/%s: not an imgpipe original", record.bucket, record.key)
                continue
            self.drive(upload_id, reason="event")

    def drive(self, upload_id: str, *, reason: str) -> None:
        """Enqueue the upload's job unless its row is final or a job is on its way. A job that
        has looked started for longer than IMGPIPE_PROCESSING_DEADLINE died with its worker
        and is replaced, also when it died before moving its row out of pending."""
        row = uploads.get_upload(self.db, upload_id)
        if row is None:
            log.info("ignored %s for unknown upload %s", reason, upload_id)
            return
        if row["status"] not in (uploads.PENDING, uploads.PROCESSING):
            log.info("ignored %s for upload %s: already %s", reason, upload_id, row["status"])
            return
        abandoned_before = uploads.utcnow() - timedelta(seconds=self.settings.processing_deadline)
        if enqueue_processing(self.queue, upload_id, started_before=abandoned_before):
            log.info("upload %s: enqueued (%s)", upload_id, reason)

    def sweep(self) -> None:
        """One round of the sweeper's steps. Each does a bounded amount of work, and none costs
        a request per pending row: however many upload URLs were handed out and never used,
        every row is reached within a bounded time and MinIO sees a few requests per sweep."""
        self.redrive_stuck_processing()
        self.ask_again_for_waiting_webhooks()
        self.drive_uploaded_originals()
        self.expire_unused_uploads()

    def redrive_stuck_processing(self) -> None:
        """Rows in processing are driven again, a page at a time in turn: one whose job is gone
        (lost with Redis) once it is IMGPIPE_SWEEP_MIN_AGE old, and one whose job has looked
        started for longer than the processing deadline (its worker died with it)."""
        rows = uploads.in_status_older_than(self.db, uploads.PROCESSING, self.min_age, ROWS_PER_STEP,
                                            after=self.pages[uploads.PROCESSING])
        self.pages[uploads.PROCESSING] = uploads.page_end(rows, ROWS_PER_STEP)
        deadline = uploads.timestamp(uploads.utcnow() - timedelta(seconds=self.settings.processing_deadline))
        for row in rows:
            past_deadline = row["updated_at"] < deadline
            self.drive(row["id"], reason="stuck in processing" if past_deadline else "processing, its job lost")

    def ask_again_for_waiting_webhooks(self) -> None:
        """Final rows whose webhook is still pending may have lost their delivery job (Redis
        down as the row became final, or restarted since): ask for it again, a page at a time."""
        rows = uploads.callbacks_waiting_older_than(self.db, self.min_age, ROWS_PER_STEP,
                                                    after=self.pages["callbacks"])
        self.pages["callbacks"] = uploads.page_end(rows, ROWS_PER_STEP)
        for row in rows:
            if enqueue_delivery(self.webhooks, self.settings, row["id"]):
                log.info("upload %s: webhook enqueued (sweep)", row["id"])
        tidy(self)

    def drive_uploaded_originals(self) -> None:
        """Drive pending uploads whose original is in the bucket: their event was missed.

        Keys sort by when their upload was made, so listing originals/ from the oldest pending
        upload to now names every original a pending row may have, without a request per row;
        the few keys of completed uploads in that range cost one row lookup per page."""
        if self.listing is None:
            self.listing = self.begin_listing()
            if self.listing is None:
                return
        for _ in range(LIST_PAGES_PER_SWEEP):
            keys = self.storage.keys_after(ORIGINALS_PREFIX, self.listing.after)
            in_pass = [key for key in keys if key < self.listing.end]
            self.drive_listed(in_pass)
            if len(in_pass) < LIST_PAGE:
                self.last_listing, self.listing = self.listing, None
                return
            self.listing.after = in_pass[-1]

    def begin_listing(self) -> ListingPass | None:
        """A pass over the originals of every upload still pending, or None when no pending
        upload is old enough to need one (younger ones still wait for their event)."""
        oldest = uploads.oldest_pending_at(self.db)
        now = uploads.utcnow()
        if oldest is None or now - oldest < self.min_age:
            return None
        first = originals_made_from(oldest - CLOCK_SKEW)
        return ListingPass(started_at=now, first=first, end=originals_made_from(now + CLOCK_SKEW), after=first)

    def drive_listed(self, keys: list[str]) -> None:
        listed = [upload_id for upload_id in map(upload_id_from_key, keys) if upload_id]
        old_enough = uploads.timestamp(uploads.utcnow() - self.min_age)
        for row in uploads.pending_with_ids(self.db, listed):
            self.listing.uploaded.add(row["id"])
            if row["updated_at"] < old_enough:
                self.drive(row["id"], reason="sweep")

    def expire_unused_uploads(self) -> None:
        """Fail pending uploads whose URL expired more than IMGPIPE_UPLOAD_GRACE ago unused.

        The last complete listing began after their URLs could last be used and covers every
        id made since the oldest pending upload, so a row it did not list has no original, with
        no request of its own. Rows are taken a page at a time in turn, so rows that stay
        pending (driven, waiting for a worker) never hold the others back."""
        listing = self.last_listing
        if listing is None:
            return
        expired = listing.started_at - timedelta(seconds=self.settings.upload_grace)
        began = uploads.timestamp(listing.started_at)
        rows = uploads.pending_expired_before(self.db, expired, ROWS_PER_STEP, after=self.pages["expired"])
        self.pages["expired"] = uploads.page_end(rows, ROWS_PER_STEP, "upload_expires_at")
        for row in rows:
            if row["id"] in listing.uploaded or row["created_at"] >= began:  # the listing knew nothing of it yet
                continue
            if uploads.mark_failed(self.db, row["id"], "upload_expired",
                                   "no file was uploaded before the upload URL expired"):
                log.info("upload %s: failed upload_expired", row["id"])
                if row["callback_url"]:
                    enqueue_delivery(self.webhooks, self.settings, row["id"])

    def run_forever(self) -> None:
        log.info("relay: %s -> queue %s", self.settings.events_key, self.settings.queue_name)
        while True:
            try:
                self.restore_inflight()
                while True:
                    self.relay_one()
                    if time.monotonic() >= self.next_sweep:
                        self.sweep()
                        self.next_sweep = time.monotonic() + self.settings.sweep_interval
            except (redis.ConnectionError, redis.TimeoutError, StorageUnavailable, DatabaseUnavailable) as error:
                log.warning("relay: %s; retrying in 1 s", error)
                time.sleep(1)
