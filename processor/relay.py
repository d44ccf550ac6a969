"""The relay: MinIO's events in Redis become RQ jobs, and nothing is lost on the way.

An event is moved atomically (BLMOVE) from MinIO's list to an in-flight list, turned into a
job, and only then removed from in-flight. A relay that dies in between leaves the event in
flight, and the next relay to start puts it back. Events are the fast path, not the only one:
every IMGPIPE_SWEEP_INTERVAL the relay runs the housekeeping steps (processor.housekeeping),
which drive the uploads whose event never came, or whose job or webhook was lost, and keep the
bucket to what an upload can still use.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import redis

from imgpipe import uploads
from imgpipe.engines import Database, DatabaseUnavailable
from imgpipe.keys import upload_id_from_key
from imgpipe.queues import inflight_key, make_queue, rejected_key, relayed_count_key
from imgpipe.settings import Settings
from imgpipe.storage import Storage, StorageUnavailable
from processor.events import MalformedEvent, parse_event
from processor.housekeeping import Housekeeping
from processor.jobs import enqueue_processing

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, settings: Settings, connection: redis.Redis, db: Database, storage: Storage):
        self.settings = settings
        self.redis = connection
        self.db = db
        self.storage = storage
        self.queue = make_queue(connection, settings)
        self.housekeeping = Housekeeping(settings, connection, db, storage, self.drive)
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

    def drive(self, upload_id: str, *, reason: str) -> bool:
        """Enqueue the upload's job unless its row is final or a job is on its way; True when
        enqueued. A job that has looked started for longer than IMGPIPE_PROCESSING_DEADLINE died
        with its worker and is replaced, also when it died before moving its row out of pending."""
        row = uploads.get_upload(self.db, upload_id)
        if row is None:
            log.info("ignored %s for unknown upload %s", reason, upload_id)
            return False
        if row["status"] not in (uploads.PENDING, uploads.PROCESSING):
            log.info("ignored %s for upload %s: already %s", reason, upload_id, row["status"])
            return False
        abandoned_before = uploads.utcnow() - timedelta(seconds=self.settings.processing_deadline)
        if not enqueue_processing(self.queue, upload_id, started_before=abandoned_before):
            return False
        log.info("upload %s: enqueued (%s)", upload_id, reason)
        return True

    def run_forever(self) -> None:
        log.info("relay: %s -> queue %s", self.settings.events_key, self.settings.queue_name)
        while True:
            try:
                self.restore_inflight()
                while True:
                    self.relay_one()
                    if time.monotonic() >= self.next_sweep:
                        self.housekeeping.sweep()
                        self.next_sweep = time.monotonic() + self.settings.sweep_interval
            except (redis.ConnectionError, redis.TimeoutError, StorageUnavailable, DatabaseUnavailable) as error:
                log.warning("relay: %s; retrying in 1 s", error)
                time.sleep(1)
