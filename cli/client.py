"""A client for a running imgpipe API, doing what docs/getting-started.md's curl walk-through does.

Ask for upload URLs (several files in one batch request), PUT each file straight to object
storage (streamed, reporting progress), poll the status, fetch the results. The `imgpipe
upload`, `status` and `results` commands use it.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import requests

from imgpipe.filetypes import guess_content_type

VERSIONS = ("original", "resized", "compressed", "thumbnail")
FINAL = ("completed", "failed", "deleted")
CHUNK = 256 * 1024
BATCH_SIZE = 50  # the server's default IMGPIPE_MAX_BATCH; a lower limit makes batches split in two


class ClientError(Exception):
    """Something went wrong on the way; code and message are what the user is shown."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Api:
    def __init__(self, base_url: str, token: str = "", timeout: float = 30.0):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        """One session per thread: `upload --jobs N` calls the API from N threads."""
        if getattr(self._local, "session", None) is None:
            self._local.session = requests.Session()
            self._local.session.headers.update(self.headers)
        return self._local.session

    def call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.http.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise ClientError("api_unreachable", f"cannot reach the API at {self.base}: {error}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and "code" in error:
                raise ClientError(error["code"], error.get("message", ""))
            raise ClientError("http_error", f"{method} {path} answered {response.status_code}")
        if not isinstance(body, dict):
            raise ClientError("http_error", f"{method} {path} did not answer JSON: is {self.base} an imgpipe API?")
        return body

    def create_many(self, bodies: list[dict]) -> list[dict | ClientError]:
        """An upload for each body (as POST /uploads takes it), or why it was refused, in order:
        one POST /uploads for a single file, batches of several otherwise."""
        if len(bodies) == 1:
            try:
                return [self.call("POST", "/uploads", json=bodies[0])]
            except ClientError as error:
                return [error]
        return [created for start in range(0, len(bodies), BATCH_SIZE)
                for created in self._create_batch(bodies[start:start + BATCH_SIZE])]

    def _create_batch(self, bodies: list[dict]) -> list[dict | ClientError]:
        try:
            entries = self.call("POST", "/uploads/batch", json={"files": bodies})["uploads"]
        except ClientError as error:
            if error.code == "too_many_files" and len(bodies) > 1:
                half = len(bodies) // 2
                return self._create_batch(bodies[:half]) + self._create_batch(bodies[half:])
            return [error] * len(bodies)
        return [ClientError(entry["error"]["code"], entry["error"]["message"]) if "error" in entry else entry
                for entry in entries]

    def status(self, upload_id: str) -> dict:
        return self.call("GET", f"/uploads/{upload_id}/status")

    def results(self, upload_id: str) -> dict:
        return self.call("GET", f"/uploads/{upload_id}/results")

    def delete(self, upload_id: str) -> dict:
        return self.call("DELETE", f"/uploads/{upload_id}")

    def list_page(self, *, status: str | None = None, flagged: bool = False, limit: int = 100,
                  cursor: str | None = None) -> dict:
        params = {name: value for name, value in (("status", status), ("flagged", "true" if flagged else None),
                                                  ("limit", limit), ("cursor", cursor)) if value is not None}
        return self.call("GET", "/uploads", params=params)

    def newest(self, count: int, status: str | None = None, flagged: bool = False) -> list[dict]:
        """The `count` newest uploads (in `status`; only flagged ones if asked), following the
        cursor across pages."""
        found, cursor = [], None
        while len(found) < count:
            page = self.list_page(status=status, flagged=flagged, limit=min(100, count - len(found)), cursor=cursor)
            found += page["uploads"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return found

    def wait(self, upload_id: str, timeout: float) -> dict:
        """Poll until the upload is completed or failed (quickly at first, then every second)."""
        deadline = time.monotonic() + timeout
        pause = 0.1
        while True:
            status = self.status(upload_id)
            if status["status"] in FINAL or time.monotonic() >= deadline:
                return status
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)


class _ProgressReader:
    """A file whose reads report their size, so requests streams it with a Content-Length."""

    def __init__(self, path: Path, on_progress: Callable[[int], None]):
        self.file = open(path, "rb")
        self.size = path.stat().st_size
        self.on_progress = on_progress

    def __len__(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(CHUNK if size is None or size < 0 else size)
        if chunk:
            self.on_progress(len(chunk))
        return chunk

    def close(self) -> None:
        self.file.close()


def put_file(upload: dict, path: Path, on_progress: Callable[[int], None]) -> None:
    """PUT the bytes to the presigned URL: no API token goes there, the URL itself is the permission."""
    reader = _ProgressReader(path, on_progress)
    # requests sends an empty stream chunked, without the Content-Length the URL signs.
    body = reader if reader.size else b""
    try:
        response = requests.request(upload["method"], upload["url"], data=body,
                                    headers=upload["headers"], timeout=(10, 300))
    except requests.RequestException as error:
        raise ClientError("upload_failed", f"could not PUT to object storage: {error}") from None
    finally:
        reader.close()
    if response.status_code >= 300:
        code = re.search(r"<Code>([^<]+)</Code>", response.text)
        reason = code.group(1) if code else f"HTTP {response.status_code}"
        raise ClientError("upload_failed", f"object storage refused the upload: {reason}")


def download(url: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with requests.get(url, stream=True, timeout=(10, 300)) as response:
            response.raise_for_status()
            with open(target, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
    except requests.RequestException as error:
        raise ClientError("download_failed", f"could not fetch {target.name}: {error}") from None
    return target


def download_results(results: dict, directory: Path) -> dict[str, str]:
    """Save the original and every preset's objects as <directory>/<id>/<name>.<ext>
    (original.jpg, resized.jpg, square.webp, …); returns name -> path, the name a preset's
    when it has one format, <preset>.<ext> when it has several."""
    files = {"original": (f"original{_extension(results['original'])}", results["original"])}
    for preset, by_format in results["presets"].items():
        for url in by_format.values():
            filename = f"{preset}{_extension(url)}"
            files[preset if len(by_format) == 1 else filename] = (filename, url)
    return {name: str(download(url, directory / results["id"] / filename)) for name, (filename, url) in files.items()}


def _extension(url: str) -> str:
    return Path(urlsplit(url).path).suffix or ".jpg"


@dataclass
class Outcome:
    """What became of one file: what `imgpipe upload` prints and --json reports."""

    file: str
    id: str | None = None
    key: str | None = None
    status: str = "rejected"
    error: dict | None = None
    results: dict | None = None
    downloaded: dict | None = None
    uploaded: bool = False
    content_type: str | None = None
    bytes: int | None = None

    def fail(self, error: ClientError) -> "Outcome":
        self.error = {"code": error.code, "message": error.message}
        return self

    def to_json(self) -> dict:
        return asdict(self)


def upload_files(api: Api, paths: list[Path], *, progress, wait: bool, timeout: float,
                 download_dir: Path | None, jobs: int) -> list[Outcome]:
    """Every file from start to finish, in order; every failure ends up in its Outcome, never raised.

    The upload URLs are asked for together, then `jobs` files at a time are PUT and waited for.
    """
    outcomes = [Outcome(file=str(path)) for path in paths]
    readable = [(outcome, path) for outcome, path in zip(outcomes, paths) if _describe(outcome, path)]
    bodies = [{"filename": path.name, "content_type": outcome.content_type, "size": outcome.bytes}
              for outcome, path in readable]
    created = api.create_many(bodies) if bodies else []

    def finish(index: int) -> None:
        (outcome, path), answer = readable[index], created[index]
        if isinstance(answer, ClientError):
            outcome.fail(answer)
        else:
            _transfer(api, path, outcome, answer, progress=progress, wait=wait, timeout=timeout,
                      download_dir=download_dir)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(finish, range(len(readable))))
    return outcomes


def _describe(outcome: Outcome, path: Path) -> bool:
    """Fill in the file's size and content type; False (the outcome failed) when it cannot be read."""
    try:
        outcome.bytes = path.stat().st_size
        outcome.content_type = guess_content_type(path)
        return True
    except OSError as error:
        outcome.fail(ClientError("unreadable_file", f"{path}: {error.strerror or error}"))
        return False


def _transfer(api: Api, path: Path, outcome: Outcome, created: dict, *, progress, wait: bool, timeout: float,
              download_dir: Path | None) -> None:
    """PUT one file to its upload URL, then wait for it and fetch its results."""
    try:
        outcome.id, outcome.key, outcome.status = created["id"], created["key"], created["status"]
        row = progress.add(path.name, outcome.bytes)
        try:
            put_file(created["upload"], path, lambda sent: progress.advance(row, sent))
        except ClientError:
            progress.finish(row, "upload failed")
            raise
        progress.finish(row, "uploaded")
        outcome.uploaded = True
        if not wait:
            return
        status = api.wait(outcome.id, timeout)
        outcome.status, outcome.error = status["status"], status["error"]
        if outcome.status not in FINAL:
            outcome.fail(ClientError("timeout", f"still {outcome.status} after {timeout:g} s"))
            return
        if outcome.status == "completed":
            results = api.results(outcome.id)
            outcome.results = {version: results[version] for version in VERSIONS}
            outcome.results["expires_at"] = results["expires_at"]
            if download_dir is not None:
                outcome.downloaded = download_results(results, download_dir)
    except ClientError as error:
        outcome.fail(error)
    except OSError as error:
        outcome.fail(ClientError("unreadable_file", f"{path}: {error.strerror or error}"))


def succeeded(outcome: Outcome, waited: bool) -> bool:
    if outcome.error is not None:
        return False
    return outcome.status == "completed" if waited else outcome.uploaded
