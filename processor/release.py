"""The housekeeping step that releases superseded derivatives.

A reprocess writes new objects under new keys and leaves the old ones where they are: a page, a
CDN or a browser may hold their URLs, which were handed out as immutable. Once
IMGPIPE_SUPERSEDED_GRACE has passed since an object was superseded, and no row names it any more
(a later reprocess may have made the very same bytes again, under the very same key), it is
removed. A deleted upload's superseded objects go with its deletion (imgpipe.deletion).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from imgpipe import uploads

log = logging.getLogger(__name__)

RELEASES_PER_STEP = 500  # superseded objects looked at per sweep: one DELETE request at most


def release_superseded(house) -> int:
    """Remove the objects superseded more than IMGPIPE_SUPERSEDED_GRACE ago that no live row names,
    and forget them (and those named again, which are in use)."""
    cutoff = uploads.utcnow() - timedelta(seconds=house.settings.superseded_grace)
    entries = uploads.superseded_before(house.db, cutoff, RELEASES_PER_STEP)
    if not entries:
        return 0
    rows = uploads.rows_by_id(house.db, sorted({entry["upload_id"] for entry in entries}))
    named = {key for row in rows.values() if row["status"] != uploads.DELETED for key in uploads.derivative_keys(row)}
    released = [entry["key"] for entry in entries if entry["key"] not in named]
    if released:
        house.storage.remove(released)
        log.info("released %s superseded derivative(s): %s", len(released), ", ".join(released[:10]))
    uploads.forget_superseded(house.db, [entry["key"] for entry in entries])
    return len(released)
