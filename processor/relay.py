"""The relay: MinIO's events in Redis become RQ jobs, and nothing is lost on the way.

An event is moved atomically (BLMOVE) from MinIO's list to an in-flight list, turned into a
job, and only then removed from in-flight. A relay that dies in between leaves the event in
flight, and the next relay to start puts it back. Events are the fast path, not the only one:
a sweep looks for uploads whose event never came (still pending, original in the bucket), and
for uploads stuck in processing past a deadline, and drives them again.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import redis
import sqlite_utils

from imgpipe import db as uploads
from imgpipe.keys import upload_id_from_key
from imgpipe.settings import Settings
from imgpipe.storage import Storage, StorageUnavailable
from processor.events import MalformedEvent, parse_event
from processor.housekeeping import tidy
from processor.jobs import enqueue_processing, make_queue, make_webhook_queue
from processor.webhooks import enqueue_delivery

log = logging.getLogger(__name__)


def inflight_key(settings: Settings) -> str:
    return f"{settings.events_key}:in-flight"


def rejected_key(settings: Settings) -> str:
    return f"{settings.events_key}:rejected"


def relayed_count_key(settings: Settings) -> str:
    """A counter of events taken off MinIO's list, for /metrics."""
    return f"{settings.events_key}:relayed"


class Relay:
    def __init__(self, settings: Settings, connection: redis.Redis, db: sqlite_utils.Database, storage: Storage):
        self.settings = settings
        self.redis = connection
        self.db = db
        self.storage = storage
        self.queue = make_queue(connection, settings)
        self.webhooks = make_webhook_queue(connection, settings)
        self.next_sweep = 0.0

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

    def drive(self, upload_id: str, *, reason: str, replace_started: bool = False) -> None:
        row = uploads.get_upload(self.db, upload_id)
        if row is None:
            log.info("ignored %s for unknown upload %s", reason, upload_id)
            return
        if row["status"] not in (uploads.PENDING, uploads.PROCESSING):
            log.info("ignored %s for upload %s: already %s", reason, upload_id, row["status"])
            return
        if enqueue_processing(self.queue, upload_id, replace_started=replace_started):
            log.info("upload %s: enqueued (%s)", upload_id, reason)

    def sweep(self) -> None:
        """Drive uploads whose event was missed, fail unused ones, re-drive stuck ones, and ask
        again for webhooks whose delivery job never came."""
        now = uploads.utcnow()
        min_age = timedelta(seconds=self.settings.sweep_min_age)
        for row in uploads.in_status_older_than(self.db, uploads.PENDING, min_age):
            if self.storage.size_of(row["key"]) is not None:
                self.drive(row["id"], reason="sweep")
            elif row["upload_expires_at"] and now > uploads.parse_timestamp(row["upload_expires_at"]) + timedelta(
                    seconds=self.settings.upload_grace):
                if uploads.mark_failed(self.db, row["id"], "upload_expired",
                                       "no file was uploaded before the upload URL expired"):
                    log.info("upload %s: failed upload_expired", row["id"])
                    if row["callback_url"]:
                        enqueue_delivery(self.webhooks, self.settings, row["id"])
        deadline = timedelta(seconds=self.settings.processing_deadline)
        for row in uploads.in_status_older_than(self.db, uploads.PROCESSING, deadline):
            self.drive(row["id"], reason="stuck in processing", replace_started=True)
        for row in uploads.callbacks_waiting_older_than(self.db, min_age):
            if enqueue_delivery(self.webhooks, self.settings, row["id"]):
                log.info("upload %s: webhook enqueued (sweep)", row["id"])
        tidy(self)

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
            except (redis.ConnectionError, redis.TimeoutError, StorageUnavailable) as error:
                log.warning("relay: %s; retrying in 1 s", error)
                time.sleep(1)
