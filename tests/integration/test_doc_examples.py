"""The shell blocks of README.md and docs/ run as written against a real stack: the same text, with
the stack's own API address for the default one and its token in var/credentials.env."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests
from PIL import Image

from cli.stack import PROJECT_ROOT
from doc_examples import doc_example

DEFAULT_API = "http://127.0.0.1:8000"


@pytest.fixture
def run_example(stack, tmp_path):
    """Run an example in a fresh directory that looks like the project's root to it."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "credentials.env").write_text(f"IMGPIPE_API_TOKEN={stack.settings.api_token}\n")
    (tmp_path / ".venv").symlink_to(PROJECT_ROOT / ".venv")

    def run(name: str, **env: str) -> subprocess.CompletedProcess:
        script = doc_example(name)
        assert DEFAULT_API in script, f"{name} no longer talks to {DEFAULT_API}: adapt this test"
        result = subprocess.run(["bash", "-e", "-c", script.replace(DEFAULT_API, stack.api_url)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "IMGPIPE_API": stack.api_url,
                                     "IMGPIPE_API_TOKEN": stack.settings.api_token, **env})
        assert result.returncode == 0, result.stdout + result.stderr
        return result
    return run


def test_the_getting_started_walk_through(run_example, tmp_path):
    result = run_example("first-upload.sh")
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "completed"
    with Image.open(tmp_path / "thumbnail.jpg") as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (300, 225))


def test_the_readme_upload(run_example, tmp_path):
    result = run_example("readme-upload.sh")
    waited, results = result.stdout.splitlines()[-2:]
    upload_id = json.load(open(tmp_path / "upload.json"))["id"]
    assert waited == f"{upload_id}  completed"
    assert set(json.loads(results)) >= {"original", "resized", "compressed", "thumbnail"}


def test_the_batch_example(run_example):
    body = json.loads(run_example("batch.sh").stdout)
    accepted, refused = body["uploads"]
    assert accepted["status"] == "pending" and accepted["upload"]["headers"]["Content-Length"] == "48213"
    assert refused == {"error": {"code": "unsupported_media_type", "message": refused["error"]["message"]}, "status": 415}


def test_the_listing_example(run_example):
    listed, *lines = run_example("list.sh").stdout.splitlines()
    assert set(json.loads(listed)) == {"uploads", "next_cursor"}
    assert all(line.split()[1] == "failed" for line in lines)


def test_the_delete_example(run_example, stack):
    created = requests.post(stack.api_url + "/uploads", timeout=10,
                            headers={"Authorization": f"Bearer {stack.settings.api_token}"},
                            json={"filename": "photo.jpg", "content_type": "image/jpeg", "size": 1000}).json()
    deleted, line = run_example("delete.sh", ID=created["id"]).stdout.splitlines()
    assert json.loads(deleted)["status"] == "deleted"
    assert line == f"{created['id']}  deleted"
