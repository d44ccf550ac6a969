"""The replaced service's web app: the picture arrives in the request, as a multipart form
field `file`, and the app stores it itself before it answers. Served by
`gunicorn --workers 2 'bench.old_design.app:create_app()'`, as imgpipe's API is served.

Flask rather than the old service's Django: the request parsing, the store write, the row and
the enqueue are the same work either way, and Flask is what imgpipe's API runs on, so the two
designs differ here by their design and not by their web framework (Django's middleware would
only add to the old side's cost).
"""

from __future__ import annotations

import io
import uuid
from pathlib import PurePosixPath

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from bench.old_design import records
from bench.old_design.config import Config


def create_app(config: Config | None = None) -> Flask:
    from bench.old_design.tasks import make_derivatives

    config = config or Config.from_env()
    app = Flask(__name__)
    store = config.store()

    @app.post("/upload/")
    def upload():
        posted = request.files.get("file")
        if posted is None or not posted.filename:
            return {"error": "invalid_request", "message": "post the picture as the form field 'file'"}, 400
        data = posted.read()
        upload_id = uuid.uuid4().hex
        suffix = PurePosixPath(posted.filename).suffix.lower()[:6] or ".bin"
        key = f"originals/{upload_id}{suffix}"
        store.put_object(config.s3_bucket_name, key, io.BytesIO(data), len(data),
                         content_type=posted.mimetype or "application/octet-stream")
        database = records.connect(config.database_path)
        try:
            records.insert(database, upload_id, posted.filename, posted.mimetype, len(data))
        finally:
            database.close()
        make_derivatives.delay(upload_id, key)
        return {"id": upload_id, "status": "pending"}, 201

    @app.get("/upload/<upload_id>/status")
    def status(upload_id: str):
        database = records.connect(config.database_path)
        try:
            row = records.find(database, upload_id)
        finally:
            database.close()
        if row is None:
            return {"error": "not_found", "message": f"no upload with id {upload_id!r}"}, 404
        return {"id": row["id"], "status": row["status"], "error": row["error"]}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return {"error": error.name.lower().replace(" ", "_"), "message": error.description}, error.code

    return app
