"""The service imgpipe replaced, rebuilt small enough to run beside it in `make bench`.

Every byte went through its own API: a client posted the file as a form to `/upload/`, the web
app wrote it to the store, recorded a row and queued a Celery task on a Redis broker; a Celery
worker read the original back, made the three derivatives with Pillow, one decode each, wrote
them and marked the row completed, while the client polled `/upload/<id>/status`.

- config: the old service's variable names (S3_*, REDIS_URL, DATABASE_PATH), read once.
- records: its table of uploads, in SQLite.
- app: the web app (Flask under gunicorn, sync workers, as imgpipe's API runs).
- tasks: the Celery app and its task, for `celery worker --pool prefork`.
- service: starting and stopping its Redis, web app and worker on free loopback ports, on the
  MinIO of an imgpipe bench stack.
- measure: both designs side by side on the same pictures and machine; summary: the table.
"""
