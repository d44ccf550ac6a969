"""IMGPIPE_DELIVERY=public against the real stack: derivatives read anonymously by permanent URLs
that never change their bytes, originals refused, a reprocess that writes new keys and releases
the old ones after the grace, and a switch back to private that closes the bucket again.

The stack is this module's own: its tests change its presets, its grace and its delivery mode.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import pytest
import requests
from PIL import Image

from cli.stack import PROJECT_ROOT
from imgpipe import uploads
from imgpipe.keys import DERIVATIVES, derivative_key_prefix
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api, make_jpegs, upload_all
from polling import eventually
from stacks import running_stack

IMMUTABLE = "public, max-age=31536000, immutable"
SMALLER_THUMBNAILS = """
[presets.resized]
box = [1024, 1024]

[presets.compressed]

[presets.thumbnail]
box = [200, 200]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("public-stack"), delivery="public",
                       superseded_grace=3600.0) as running:
        yield running


@pytest.fixture(scope="module")
def completed(stack, tmp_path_factory):
    api = Api.of(stack)
    created = upload_all(api, make_jpegs(tmp_path_factory.mktemp("photos"), 2, size=(800, 600)))
    for upload in created:
        assert api.wait_final(upload["id"])["status"] == "completed"
    return [upload["id"] for upload in created]


def restart(stack, names=("api", "worker"), **changes) -> None:
    """Restart processes with changed settings, as an operator would (the API before the worker)."""
    stack.settings = dataclasses.replace(stack.settings, **changes)
    starts = {"api": stack.start_api, "worker": stack.start_worker, "relay": stack.start_relay}
    for name in names:
        stack.stop_process(name)
        starts[name]()


def anonymous(url: str) -> requests.Response:
    """A plain GET, as a browser on any page or a CDN makes it: no credential, no signature."""
    return requests.get(url, timeout=10)


def results(stack, upload_id: str) -> dict:
    response = Api.of(stack).get(f"/uploads/{upload_id}/results")
    assert response.status_code == 200, response.text
    return response.json()


def stored_keys(stack, upload_id: str) -> list[str]:
    """Every derivative the bucket holds of the upload, whatever its version, listed by prefix."""
    storage = Storage(stack.settings, ROOT)
    return [key for name in DERIVATIVES for key, _ in storage.list_after(derivative_key_prefix(name, upload_id), "")]


def test_a_derivative_loads_anonymously_and_the_original_is_refused(stack, completed):
    body = results(stack, completed[0])
    assert body["expires_at"] is None
    assert body["sizes"] == {"resized": {"width": 800, "height": 600}, "compressed": {"width": 800, "height": 600},
                             "thumbnail": {"width": 300, "height": 225}}
    url = body["presets"]["thumbnail"]["jpeg"]
    assert url.startswith(f"{stack.settings.public_s3_url}/{stack.settings.s3_bucket_name}/thumbnails/{completed[0]}.")
    assert "X-Amz-" not in url
    answer = anonymous(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == IMMUTABLE
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(answer.content)).size == (300, 225)

    row = uploads.get_upload(uploads.connect(stack.settings.database), completed[0])
    original = anonymous(f"{stack.settings.public_s3_url}/{stack.settings.s3_bucket_name}/{row['key']}")
    assert original.status_code == 403
    assert anonymous(f"{stack.settings.public_s3_url}/{stack.settings.s3_bucket_name}/").status_code == 403, \
        "nobody may list the bucket"
    assert anonymous(body["original"]).status_code == 200, "the original's presigned URL still works"


def test_a_reprocess_keeps_the_old_url_serving_its_old_bytes(stack, completed, tmp_path):
    before = results(stack, completed[0])
    old_url, old_bytes = before["presets"]["thumbnail"]["jpeg"], anonymous(before["presets"]["thumbnail"]["jpeg"]).content
    presets = tmp_path / "presets.toml"
    presets.write_text(SMALLER_THUMBNAILS)
    restart(stack, presets=str(presets))
    done = subprocess.run([sys.executable, "-m", "cli.main", "reprocess"], cwd=PROJECT_ROOT, env=stack.env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Done: 2 remade." in done.stdout

    after = results(stack, completed[0])
    new_url = after["presets"]["thumbnail"]["jpeg"]
    assert new_url != old_url
    assert after["sizes"]["thumbnail"] == {"width": 200, "height": 150}
    assert after["presets"]["resized"] == before["presets"]["resized"], "the same bytes keep the same URL"
    new = anonymous(new_url)
    assert (new.status_code, new.headers["Cache-Control"]) == (200, IMMUTABLE)
    assert Image.open(io.BytesIO(new.content)).size == (200, 150)
    old = anonymous(old_url)
    assert (old.status_code, old.content) == (200, old_bytes), "a URL handed out serves the same bytes"


def test_deleting_an_upload_removes_its_superseded_objects_too(stack, completed):
    upload_id = completed[1]
    assert len(stored_keys(stack, upload_id)) == 4, "three current derivatives and the superseded thumbnail"
    assert Api.of(stack).delete(upload_id).json()["status"] == "deleted"
    assert stored_keys(stack, upload_id) == []


def test_after_the_grace_the_old_object_is_released_and_the_new_one_served(stack, completed):
    upload_id = completed[0]
    old = [key for key in stored_keys(stack, upload_id) if key.startswith("thumbnails/")]
    current = results(stack, upload_id)["presets"]["thumbnail"]["jpeg"]
    assert len(old) == 2
    restart(stack, ("relay",), superseded_grace=1.0)
    eventually(lambda: len(stored_keys(stack, upload_id)) == 3, 40, "the superseded thumbnail to be released")
    assert anonymous(current).status_code == 200
    released = [key for key in old if not current.endswith(key)]
    url = f"{stack.settings.public_s3_url}/{stack.settings.s3_bucket_name}/{released[0]}"
    assert anonymous(url).status_code in (403, 404)


def test_private_mode_closes_the_bucket_again(stack, completed):
    public_url = results(stack, completed[0])["presets"]["thumbnail"]["jpeg"]
    restart(stack, ("api",), delivery="private")
    assert "removed anonymous read of the derivatives" in stack.apply_config()
    assert anonymous(public_url).status_code == 403
    body = results(stack, completed[0])
    assert body["expires_at"] is not None and body["sizes"]["thumbnail"] == {"width": 200, "height": 150}
    signed = anonymous(body["presets"]["thumbnail"]["jpeg"])
    assert (signed.status_code, signed.headers["Cache-Control"]) == (200, "private")
    assert stack.apply_config() == [], "setup changes nothing the second time"
