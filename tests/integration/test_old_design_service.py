"""The benchmark's reproduction of the replaced service works on the real parts: a form post
through its web app to MinIO, its Celery worker on its own Redis, its rows; and stopping it
leaves no process behind."""

import io
import os

import requests
from PIL import Image

from bench.inputs import photo_like_jpeg
from bench.old_design.service import BUCKET, start_old_service
from polling import eventually
from stacks import process_tree, running_stack


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_form_post_is_stored_derived_and_completed_then_everything_stops(tmp_path):
    with running_stack(tmp_path / "stack", workers=0) as stack:
        old = start_old_service(stack, 1)
        pids = [pid for process in old.stack.processes.values() for pid in process_tree(process.pid)]
        try:
            refused = requests.post(f"{old.api_url}/upload/", data={"name": "no file"}, timeout=10)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
            assert requests.get(f"{old.api_url}/upload/{'0' * 32}/status", timeout=10).status_code == 404

            posted = requests.post(f"{old.api_url}/upload/", timeout=30,
                                   files={"file": ("photo.jpg", photo_like_jpeg(1200, 800, seed=5), "image/jpeg")})
            assert posted.status_code == 201
            upload_id = posted.json()["id"]

            def final():
                status = requests.get(f"{old.api_url}/upload/{upload_id}/status", timeout=10).json()
                return status if status["status"] in ("completed", "failed") else None

            assert eventually(final, 60, "the old worker to finish the upload")["status"] == "completed"
            store = old.config.store()
            sizes = {}
            for prefix in ("originals", "resized", "compressed", "thumbnails"):
                response = store.get_object(BUCKET, f"{prefix}/{upload_id}.jpg")
                sizes[prefix] = Image.open(io.BytesIO(response.read())).size
                response.close()
                response.release_conn()
            assert sizes == {"originals": (1200, 800), "resized": (1024, 683), "compressed": (1200, 800),
                             "thumbnails": (300, 200)}
        finally:
            old.stop()
        assert len(pids) >= 4  # redis, gunicorn and its two workers, celery and its pool process
        assert [pid for pid in pids if alive(pid)] == []
        assert not old.stack.var_dir.exists()
