"""A housekeeping step: multipart uploads nobody will complete are aborted, so the store keeps no
parts that no object will ever hold.

An upload in parts is abandoned once its row is no longer pending (failed, aborted, deleted) or
its time (IMGPIPE_MULTIPART_TTL) and IMGPIPE_UPLOAD_GRACE are over; the API refuses parts and
completes from the end of its time on, so the grace keeps the abort clear of a last complete.
The rows say which store uploads are still open: MinIO lists multipart uploads of one object
name at a time, never of a prefix, so the store cannot be asked for them all. (A store upload
whose row was never written, the API dying between the two, holds no part, since nobody was
given a URL for one; MinIO removes it after its MINIO_API_STALE_UPLOADS_EXPIRY, 24 h.)
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from imgpipe import uploads
from imgpipe.storage import Storage
from imgpipe.store_identities import MULTIPART

log = logging.getLogger(__name__)

ABORTS_PER_STEP = 100  # abandoned uploads one sweep aborts (each an AbortMultipartUpload request)


def abort_abandoned_multipart(house) -> int:
    """The step as the relay's housekeeping runs it: how many it aborted."""
    return len(abort_abandoned(house.settings, house.db, multipart_storage(house.settings)))


@functools.lru_cache(maxsize=4)
def multipart_storage(settings) -> Storage:
    """The bucket as the multipart identity sees it: the one that may abort uploads."""
    return Storage(settings, MULTIPART)


def abort_abandoned(settings, db, storage: Storage, limit: int = ABORTS_PER_STEP) -> list[str]:
    """Abort the store uploads of up to `limit` abandoned rows; returns their ids. Aborting one
    the store no longer has (completed, or aborted already) is no error, so a row is closed once
    the store has answered, whatever it had."""
    expired_before = uploads.utcnow() - timedelta(seconds=settings.upload_grace)
    aborted = []
    for row in uploads.open_multipart_to_abort(db, expired_before, limit):
        storage.abort_multipart(row["key"], row["multipart_upload_id"])
        uploads.close_multipart(db, row["id"])
        log.info("upload %s: its abandoned multipart upload aborted (%s)", row["id"], row["status"])
        aborted.append(row["id"])
    return aborted
