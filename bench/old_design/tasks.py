"""The replaced service's worker: one Celery task per upload, run by
`celery -A bench.old_design.tasks worker --pool prefork --concurrency 2`; its derivatives are
bench.old_design.derivatives'."""

from __future__ import annotations

import io
from functools import cache

from celery import Celery

from bench.old_design import records
from bench.old_design.config import Config
from bench.old_design.derivatives import DERIVATIVES, derivative

CONFIG = Config.from_env()
# No result backend, as the old service had none: the row says how a task ended.
app = Celery("old_design", broker=CONFIG.redis_url)
app.conf.broker_connection_retry_on_startup = True


@cache
def store():
    return CONFIG.store()


@app.task(name="old_design.make_derivatives")
def make_derivatives(upload_id: str, key: str) -> None:
    database = records.connect(CONFIG.database_path)
    try:
        records.set_status(database, upload_id, "processing")
        response = store().get_object(CONFIG.s3_bucket_name, key)
        try:
            original = response.read()
        finally:
            response.close()
            response.release_conn()
        for prefix, box, quality in DERIVATIVES:
            body = derivative(original, box, quality)
            store().put_object(CONFIG.s3_bucket_name, f"{prefix}/{upload_id}.jpg", io.BytesIO(body), len(body),
                               content_type="image/jpeg")
        records.set_status(database, upload_id, "completed")
    except Exception as error:
        records.set_status(database, upload_id, "failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        database.close()
