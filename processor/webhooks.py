"""Webhooks: POSTing an upload's record to its callback URL once it is completed or failed, and
again when it is deleted (the tries are then counted afresh).

An upload whose URL expired unused was never uploaded: its callback is skipped, not tried,
unless IMGPIPE_WEBHOOK_EXPIRED asks for it (a client made many such rows to have the workers
POST wherever it likes). A try's record keeps the HTTP status and a category of what went
wrong (imgpipe.webhook_errors), never what the receiver sent.

Delivery is a job of its own, on a queue of its own that workers take only when no image is
waiting, enqueued (processor.jobs.enqueue_delivery) after the row is final: a slow or dead
receiver never holds up or fails processing. Every try is recorded. A try not answered 2xx raises, and RQ runs the job again
after the next of IMGPIPE_WEBHOOK_RETRY_INTERVALS; the last try marks the callback failed.
"""

from __future__ import annotations

import http.client
import json
import logging
import time

from imgpipe import uploads
from imgpipe.callback_addresses import CallbackRefused
from imgpipe.error_codes import UploadFailure
from imgpipe.records import record_body
from imgpipe.webhook_errors import HTTP_STATUS, category
from imgpipe.webhook_signature import signed_headers
from processor.resources import resources
from processor.webhook_http import post_webhook

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0


class DeliveryFailed(Exception):
    """A try that was not answered 2xx: raising makes RQ retry the job after the next interval."""


def deliver_callback(upload_id: str) -> str:
    """One try at delivering the webhook: 'delivered', 'failed' after the last try, 'skipped'
    when there is nothing (left) to deliver; raises DeliveryFailed when another try follows."""
    res = resources()
    settings = res.settings
    row = uploads.get_upload(res.db, upload_id)
    if row is None or row["callback_state"] != uploads.PENDING:
        return uploads.SKIPPED
    if row["error_code"] == UploadFailure.UPLOAD_EXPIRED and not settings.webhook_expired:
        uploads.finish_callback(res.db, upload_id, uploads.SKIPPED, deleted_at=row["deleted_at"])
        log.info("upload %s: webhook skipped, nothing was uploaded (IMGPIPE_WEBHOOK_EXPIRED is off)", upload_id)
        return uploads.SKIPPED
    now = uploads.utcnow()
    record = record_body(row, res.storage, settings.result_url_ttl, now, uploads.delivery_attempts(res.db, upload_id),
                         settings.derivative_presets, settings.delivery)
    body = json.dumps(record).encode()
    headers = signed_headers(settings.webhook_secret, int(time.time()), body)
    http_status, error = None, None
    try:
        http_status = post_webhook(row["callback_url"], body, headers, allowed_hosts=settings.webhook_allow_hosts,
                                   allowed_ports=settings.webhook_ports, timeout=REQUEST_TIMEOUT)
        if not 200 <= http_status < 300:
            error = HTTP_STATUS
    except CallbackRefused as refused:
        error = category(refused)
        log.info("upload %s: webhook refused: %s", upload_id, refused)  # our words, not the receiver's
    except (OSError, http.client.HTTPException) as failure:
        error = category(failure)
    tries = uploads.record_delivery_attempt(res.db, upload_id, http_status=http_status, error=error,
                                            since=row["deleted_at"] or "")
    if error is None:
        uploads.finish_callback(res.db, upload_id, uploads.DELIVERED, deleted_at=row["deleted_at"])
        log.info("upload %s: webhook delivered (try %s, HTTP %s)", upload_id, tries, http_status)
        return uploads.DELIVERED
    if tries > len(settings.webhook_retry_intervals):
        uploads.finish_callback(res.db, upload_id, uploads.FAILED, deleted_at=row["deleted_at"])
        log.warning("upload %s: webhook failed after %s tries: %s (HTTP %s)", upload_id, tries, error, http_status)
        return uploads.FAILED
    log.info("upload %s: webhook try %s failed (%s, HTTP %s), will retry", upload_id, tries, error, http_status)
    raise DeliveryFailed(error)
