"""Talking to a running stack the way users do: JSON over HTTP, and curl for the PUT."""

from __future__ import annotations

import io
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from polling import eventually


class Api:
    """A client for the HTTP contract, doing what a curl user would do, with the API token
    (`Api.of(stack)` sends the stack's)."""

    def __init__(self, base: str, token: str = ""):
        self.base = base
        self.token = token
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def of(cls, stack) -> "Api":
        return cls(stack.api_url, stack.settings.api_token)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.http.post(self.base + path, timeout=10, **kwargs)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=10)

    def create(self, filename: str = "photo.jpg", content_type: str = "image/jpeg", size: int = 1000, **extra) -> dict:
        """A pending upload whose URL takes exactly `size` bytes (tests that never PUT leave it)."""
        response = self.post("/uploads", json={"filename": filename, "content_type": content_type, "size": size,
                                                **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def create_for(self, path, content_type: str = "image/jpeg", **extra) -> dict:
        """A pending upload for this file: its name and its size."""
        return self.create(path.name, content_type, path.stat().st_size, **extra)

    def delete(self, upload_id: str) -> requests.Response:
        return self.http.delete(f"{self.base}/uploads/{upload_id}", timeout=10)

    def wait_final(self, upload_id: str, timeout: float = 30.0) -> dict:
        status = {"status": "unanswered"}

        def final():
            nonlocal status
            response = self.get(f"/uploads/{upload_id}/status")
            if response.status_code != 503:  # a service unavailable for now is asked again, as clients do
                status = response.json()
            return status["status"] in ("completed", "failed", "deleted") and status

        return eventually(final, timeout, lambda: f"upload {upload_id} to be final (still {status['status']})")


def curl_put(upload: dict, path) -> subprocess.CompletedProcess:
    """PUT a file to a presigned URL with curl -T and the headers the API said to send,
    as docs/getting-started.md tells users to. Returns curl's result, with the HTTP status as stdout."""
    headers = [arg for name, value in upload["headers"].items() for arg in ("-H", f"{name}: {value}")]
    return subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(path), *headers, upload["url"]],
        capture_output=True, text=True, timeout=30)


def put_file(upload: dict, path) -> None:
    result = curl_put(upload, path)
    assert (result.returncode, result.stdout) == (0, "200"), f"PUT failed: {result.stdout} {result.stderr}"



def upload_all(api: Api, paths, *, threads: int = 8) -> list[dict]:
    """Create and PUT every file, several at a time; returns the created uploads in order."""
    def one(path):
        client = Api(api.base, api.token)
        created = client.create_for(path)
        put_file(created["upload"], path)
        return created

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, paths))


def make_jpegs(directory: Path, count: int, size=(320, 240)) -> list[Path]:
    """Distinct small JPEGs (each a differently tinted gradient), cheap to make and to process."""
    directory.mkdir(parents=True, exist_ok=True)
    base = Image.linear_gradient("L").resize(size)
    paths = []
    for index in range(count):
        path = directory / f"image-{index:03d}.jpg"
        tint = Image.new("L", size, (index * 37) % 256)
        Image.merge("RGB", (base, tint, base.rotate(90 * (index % 4)))).save(path, "JPEG", quality=85)
        paths.append(path)
    return paths


def fetched_image(url: str) -> Image.Image:
    """The picture a URL serves, decoded whole (a truncated or corrupt one fails here)."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image
