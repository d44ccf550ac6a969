"""Talking to a running stack the way users do: JSON over HTTP, and curl for the PUT."""

from __future__ import annotations

import subprocess
import time

import requests


class Api:
    """A client for the HTTP contract, doing what a curl user would do."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.http.post(self.base + path, timeout=10, **kwargs)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=10)

    def create(self, filename: str = "photo.jpg", content_type: str = "image/jpeg", **extra) -> dict:
        response = self.post("/uploads", json={"filename": filename, "content_type": content_type, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def wait_final(self, upload_id: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get(f"/uploads/{upload_id}/status").json()
            if status["status"] in ("completed", "failed"):
                return status
            time.sleep(0.05)
        raise AssertionError(f"upload {upload_id} still {status['status']} after {timeout} s")


def curl_put(url: str, path, content_type: str) -> None:
    """PUT a file to a presigned URL with curl -T, as the README tells users to."""
    result = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-T", str(path), "-H", f"Content-Type: {content_type}", url],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"curl failed ({result.returncode}): {result.stdout} {result.stderr}"
