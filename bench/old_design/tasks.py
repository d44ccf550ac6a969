"""The replaced service's worker: one Celery task per upload, run by
`celery -A bench.old_design.tasks worker --pool prefork --concurrency 2`.

The derivatives are made as the old service made them, each from a decode of its own: open,
convert to RGB, thumbnail into the box (none for compressed), save as JPEG. imgpipe's worker
plans all three from one decode (docs/design/worker.md); this is what it was measured against.
"""

from __future__ import annotations

import io
from functools import cache

from celery import Celery
from PIL import Image

from bench.alternatives import COMPRESSED_QUALITY, DERIVED_QUALITY, RESIZED_BOX, THUMBNAIL_BOX
from bench.old_design import records
from bench.old_design.config import Config

CONFIG = Config.from_env()
# No result backend, as the old service had none: the row says how a task ended.
app = Celery("old_design", broker=CONFIG.redis_url)
app.conf.broker_connection_retry_on_startup = True

# (key prefix, box or None for full size, JPEG quality)
DERIVATIVES = (("resized", RESIZED_BOX, DERIVED_QUALITY), ("compressed", None, COMPRESSED_QUALITY),
               ("thumbnails", THUMBNAIL_BOX, DERIVED_QUALITY))


@cache
def store():
    return CONFIG.store()


def derivative(original: bytes, box: int | None, quality: int) -> bytes:
    image = Image.open(io.BytesIO(original)).convert("RGB")
    if box is not None:
        image.thumbnail((box, box), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


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
