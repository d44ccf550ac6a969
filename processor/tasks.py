"""The RQ job: turn one uploaded original into its derivatives.

The row is the source of truth. A job first claims it (pending or processing → processing,
counting the attempt), writes every derivative, and only then marks it completed, so nothing
claims to be complete before its objects exist. A duplicate job finds the row final and
does nothing.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlite_utils

from imgpipe import db as uploads
from imgpipe.keys import DERIVATIVES, derivative_key
from imgpipe.settings import Settings
from imgpipe.storage import Storage, StorageUnavailable
from processor.imaging import ImageRejected, make_derivatives

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    db: sqlite_utils.Database
    storage: Storage
    writers: ThreadPoolExecutor
    pid: int


_resources: Resources | None = None


def resources() -> Resources:
    """Clients for this process, made once; a forked child makes its own."""
    global _resources
    if _resources is None or _resources.pid != os.getpid():
        settings = Settings.from_env()
        db = uploads.connect(settings.database_path)
        uploads.ensure_schema(db)
        writers = ThreadPoolExecutor(max_workers=len(DERIVATIVES), thread_name_prefix="derivative-writer")
        _resources = Resources(settings, db, Storage(settings), writers, os.getpid())
    return _resources


def process_upload(upload_id: str) -> str:
    """Process one upload; returns the row's final status (or 'skipped' if it already was final)."""
    res = resources()
    row = uploads.claim_for_processing(res.db, upload_id)
    if row is None:
        log.info("upload %s: already final, nothing to do", upload_id)
        return "skipped"
    log.info("upload %s: processing (attempt %s)", upload_id, row["attempts"])
    if row["attempts"] > res.settings.max_attempts:
        return _fail(res, upload_id, "internal",
                     f"gave up after {row['attempts'] - 1} attempts that did not finish")
    try:
        return _derive(res, row)
    except ImageRejected as rejected:
        return _fail(res, upload_id, rejected.code, rejected.message)
    except StorageUnavailable as error:
        uploads.release_attempt(res.db, upload_id)
        log.warning("upload %s: storage unavailable (%s), will retry", upload_id, error)
        raise
    except Exception as error:
        if row["attempts"] >= res.settings.max_attempts:
            log.exception("upload %s: attempt %s failed, no attempts left", upload_id, row["attempts"])
            return _fail(res, upload_id, "internal", f"{type(error).__name__}: {error}")
        log.warning("upload %s: attempt %s failed (%s), will retry", upload_id, row["attempts"], error)
        raise


def _derive(res: Resources, row: dict) -> str:
    upload_id, key = row["id"], row["key"]
    size = res.storage.size_of(key)
    if size is None:
        return _fail(res, upload_id, "missing_original", "the original is not in the bucket")
    if size > res.settings.max_upload_bytes:
        raise ImageRejected(
            "too_large", f"the upload is {size} bytes; the limit is {res.settings.max_upload_bytes}")
    data = res.storage.read(key)
    derivatives = make_derivatives(data, max_pixels=res.settings.max_pixels)
    writes = [
        res.writers.submit(res.storage.write, derivative_key(kind, upload_id), getattr(derivatives, kind), "image/jpeg")
        for kind in DERIVATIVES
    ]
    for write in writes:
        write.result()
    uploads.mark_completed(res.db, upload_id, size=len(data), width=derivatives.width,
                           height=derivatives.height, image_format=derivatives.format)
    log.info("upload %s: completed (%s %sx%s, %s bytes)", upload_id, derivatives.format,
             derivatives.width, derivatives.height, len(data))
    return uploads.COMPLETED


def _fail(res: Resources, upload_id: str, code: str, message: str) -> str:
    uploads.mark_failed(res.db, upload_id, code, message)
    log.info("upload %s: failed %s: %s", upload_id, code, message)
    return uploads.FAILED
