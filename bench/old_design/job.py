"""What the old service's task did with one upload, apart from Celery: mark the row processing,
read the original back, write the three derivatives, mark the row completed (or failed, with
why). `derive` is the derivation, so the benchmark can time the rest with the pictures made
beforehand."""

from __future__ import annotations

import io

from bench.old_design import records
from bench.old_design.config import Config
from bench.old_design.derivatives import PREFIXES, old_derivatives


def process_upload(config: Config, store, upload_id: str, key: str, derive=old_derivatives) -> None:
    database = records.connect(config.database_path)
    try:
        records.set_status(database, upload_id, "processing")
        response = store.get_object(config.s3_bucket_name, key)
        try:
            original = response.read()
        finally:
            response.close()
            response.release_conn()
        for prefix, body in zip(PREFIXES, derive(original)):
            store.put_object(config.s3_bucket_name, f"{prefix}/{upload_id}.jpg", io.BytesIO(body), len(body),
                             content_type="image/jpeg")
        records.set_status(database, upload_id, "completed")
    except Exception as error:
        records.set_status(database, upload_id, "failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        database.close()
