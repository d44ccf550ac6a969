"""A client for a running imgpipe API, doing what docs/getting-started.md's curl walk-through does.

Ask for upload URLs (several files in one batch request), PUT each file straight to object
storage (streamed, reporting progress), poll the status, fetch the results. The `imgpipe
upload`, `status` and `results` commands use it.

A file the API answers with a multipart upload (from IMGPIPE_MULTIPART_THRESHOLD_MB on) is sent in
parts, several at once, and what was sent is kept in a cache folder (cli.resume): run again after
an interruption, the same command asks the store which parts it holds and sends only the others.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait as wait_for
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import requests

from cli.resume import PartsState, ResumeCache
from imgpipe.error_codes import ApiError, ClientFailure
from imgpipe.formats import SNIFF_BYTES, guess_content_type

VERSIONS = ("original", "resized", "compressed", "thumbnail")
FINAL = ("completed", "failed", "deleted")
CHUNK = 256 * 1024
BATCH_SIZE = 50  # the server's default IMGPIPE_MAX_BATCH; a lower limit makes batches split in two
PARTS_AT_ONCE = 4
# What the API answers for an upload in parts that can no longer be resumed: it starts again.
GONE = (ApiError.NOT_FOUND, ApiError.FORBIDDEN, ApiError.UPLOAD_EXPIRED, ApiError.MULTIPART_NOT_OPEN,
        ApiError.NOT_MULTIPART)


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
            raise ClientError(ClientFailure.API_UNREACHABLE, f"cannot reach the API at {self.base}: {error}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and "code" in error:
                raise ClientError(error["code"], error.get("message", ""))
            raise ClientError(ApiError.HTTP_ERROR, f"{method} {path} answered {response.status_code}")
        if not isinstance(body, dict):
            raise ClientError(ApiError.HTTP_ERROR,
                              f"{method} {path} did not answer JSON: is {self.base} an imgpipe API?")
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
            if error.code == ApiError.TOO_MANY_FILES and len(bodies) > 1:
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
    """A file (or `length` bytes of it from `start`) whose reads report their size, so requests
    streams it with a Content-Length."""

    def __init__(self, path: Path, on_progress: Callable[[int], None], start: int = 0, length: int | None = None):
        self.file = open(path, "rb")
        self.file.seek(start)
        self.size = path.stat().st_size - start if length is None else length
        self.left = self.size
        self.on_progress = on_progress

    def __len__(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(min(CHUNK if size is None or size < 0 else size, self.left))
        self.left -= len(chunk)
        if chunk:
            self.on_progress(len(chunk))
        return chunk

    def close(self) -> None:
        self.file.close()


def put_file(upload: dict, path: Path, on_progress: Callable[[int], None], start: int = 0,
             length: int | None = None) -> requests.Response:
    """PUT the bytes (all, or `length` from `start`) to the presigned URL: no API token goes
    there, the URL itself is the permission."""
    reader = _ProgressReader(path, on_progress, start, length)
    # requests sends an empty stream chunked, without the Content-Length the URL signs.
    body = reader if reader.size else b""
    try:
        response = requests.request(upload["method"], upload["url"], data=body,
                                    headers=upload["headers"], timeout=(10, 300))
    except requests.RequestException as error:
        raise ClientError(ClientFailure.UPLOAD_FAILED, f"could not PUT to object storage: {error}") from None
    finally:
        reader.close()
    if response.status_code >= 300:
        code = re.search(r"<Code>([^<]+)</Code>", response.text)
        reason = code.group(1) if code else f"HTTP {response.status_code}"
        raise ClientError(ClientFailure.UPLOAD_FAILED, f"object storage refused the upload: {reason}")
    return response


def put_parts(api: Api, state: PartsState, cache: ResumeCache, on_progress: Callable[[int], None],
              parts_at_once: int) -> None:
    """Send every part the state does not have yet, `parts_at_once` at a time, noting each one's
    ETag as it lands, then ask the API to complete. A part that fails stops the others; what was
    sent stays noted for the next run."""
    plan = state.plan
    missing = [number for number in range(1, plan.count + 1) if str(number) not in state.parts]

    def send(number: int) -> None:
        part = api.call("GET", f"/uploads/{state.id}/multipart/parts/{number}")
        answer = put_file(part, Path(state.file), on_progress, (number - 1) * plan.part_size, plan.length(number))
        cache.note_part(state, number, answer.headers["ETag"])

    with ThreadPoolExecutor(max_workers=parts_at_once) as pool:
        futures = [pool.submit(send, number) for number in missing]
        done, _ = wait_for(futures, return_when=FIRST_EXCEPTION)
        failed = next((future.exception() for future in done if future.exception()), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            raise failed
    api.call("POST", f"/uploads/{state.id}/multipart/complete",
             json={"parts": [{"part_number": int(number), "etag": etag} for number, etag in sorted(
                 state.parts.items(), key=lambda item: int(item[0]))]})
    cache.forget(state)


def resume_state(api: Api, state: PartsState) -> str:
    """Bring a kept state up to date with the store's own list of parts; returns what became of
    the upload: "resume" (send what is missing), "sent" (completed meanwhile) or "gone" (start again)."""
    try:
        listed = api.call("GET", f"/uploads/{state.id}/multipart/parts")["parts"]
    except ClientError as error:
        if error.code == ApiError.UPLOAD_NOT_PENDING:
            return "sent" if api.status(state.id)["status"] in ("processing", "completed") else "gone"
        if error.code in GONE:
            return "gone"
        raise
    state.parts = {str(part["part_number"]): part["etag"] for part in listed
                   if part["part_number"] <= state.part_count and part["size"] == state.plan.length(part["part_number"])}
    return "resume"


def download(url: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with requests.get(url, stream=True, timeout=(10, 300)) as response:
            response.raise_for_status()
            with open(target, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
    except requests.RequestException as error:
        raise ClientError(ClientFailure.DOWNLOAD_FAILED, f"could not fetch {target.name}: {error}") from None
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
    resumed: bool = False  # an interrupted upload in parts, taken up where the store left it

    def fail(self, error: ClientError) -> "Outcome":
        self.error = {"code": error.code, "message": error.message}
        return self

    def to_json(self) -> dict:
        return asdict(self)


def upload_files(api: Api, paths: list[Path], *, progress, wait: bool, timeout: float,
                 download_dir: Path | None, jobs: int, parts_at_once: int = PARTS_AT_ONCE,
                 cache: ResumeCache | None = None) -> list[Outcome]:
    """Every file from start to finish, in order; every failure ends up in its Outcome, never raised.

    A file with a kept state (an interrupted upload in parts) is resumed; the upload URLs of the
    others are asked for together; then `jobs` files at a time are sent and waited for.
    """
    cache = cache or ResumeCache()
    outcomes = [Outcome(file=str(path)) for path in paths]
    readable = [(outcome, path) for outcome, path in zip(outcomes, paths) if _describe(outcome, path)]
    kept = [cache.find(api.base, path) for _, path in readable]
    fresh = [index for index, state in enumerate(kept) if state is None]
    created: list = [None] * len(readable)
    answers = api.create_many([_body(*readable[index]) for index in fresh]) if fresh else []
    for index, answer in zip(fresh, answers):
        created[index] = answer

    def finish(index: int) -> None:
        (outcome, path), answer = readable[index], created[index]
        if answer is None:
            answer = _resumed(api, cache, kept[index], outcome, path, progress)
        if isinstance(answer, ClientError):
            outcome.fail(answer)
        else:
            _transfer(api, path, outcome, answer, progress=progress, wait=wait, timeout=timeout,
                      download_dir=download_dir, cache=cache, parts_at_once=parts_at_once)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(finish, range(len(readable))))
    return outcomes


def _body(outcome: Outcome, path: Path) -> dict:
    return {"filename": path.name, "content_type": outcome.content_type, "size": outcome.bytes}


def _resumed(api: Api, cache: ResumeCache, state: PartsState, outcome: Outcome, path: Path, progress):
    """What to go on with for a file whose upload in parts was interrupted, shaped as POST /uploads'
    answer: with its kept "state" (the missing parts to send) or "sent" (all were, and completed)
    in place of how to send it; or a new upload, when the old one can no longer be resumed."""
    try:
        became = resume_state(api, state)
    except ClientError as error:
        return error
    if became == "gone":
        cache.forget(state)
        progress.say(f"{path.name}: the interrupted upload {state.id} can no longer be resumed; starting again")
        return api.create_many([_body(outcome, path)])[0]
    outcome.resumed = True
    if became == "sent":
        cache.forget(state)
        return {"id": state.id, "key": state.key, "status": "pending", "sent": True}
    progress.say(f"{path.name}: resuming upload {state.id}: {len(state.parts)} of {state.part_count} parts"
                 " already stored, sending the rest")
    return {"id": state.id, "key": state.key, "status": "pending", "state": state}


def _describe(outcome: Outcome, path: Path) -> bool:
    """Fill in the file's size and content type; False (the outcome failed) when it cannot be read."""
    try:
        outcome.bytes = path.stat().st_size
        with open(path, "rb") as file:
            outcome.content_type = guess_content_type(file.read(SNIFF_BYTES), path.name)
        return True
    except OSError as error:
        outcome.fail(ClientError(ClientFailure.UNREADABLE_FILE, f"{path}: {error.strerror or error}"))
        return False


def _transfer(api: Api, path: Path, outcome: Outcome, created: dict, *, progress, wait: bool, timeout: float,
              download_dir: Path | None, cache: ResumeCache, parts_at_once: int) -> None:
    """Send one file (one PUT, or in parts), then wait for it and fetch its results."""
    try:
        outcome.id, outcome.key, outcome.status = created["id"], created["key"], created["status"]
        if not created.get("sent"):
            _send(api, path, outcome, created, progress, cache, parts_at_once)
        outcome.uploaded = True
        if not wait:
            return
        status = api.wait(outcome.id, timeout)
        outcome.status, outcome.error = status["status"], status["error"]
        if outcome.status not in FINAL:
            outcome.fail(ClientError(ClientFailure.TIMEOUT, f"still {outcome.status} after {timeout:g} s"))
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
        outcome.fail(ClientError(ClientFailure.UNREADABLE_FILE, f"{path}: {error.strerror or error}"))


def _send(api: Api, path: Path, outcome: Outcome, created: dict, progress, cache: ResumeCache,
          parts_at_once: int) -> None:
    state = created.get("state") or (cache.start(api.base, path, created) if "multipart" in created else None)
    row = progress.add(path.name, outcome.bytes)
    if state is not None:
        progress.advance(row, sum(state.plan.length(int(number)) for number in state.parts))
        progress.note(row, f"{state.part_count} parts")
    try:
        if state is None:
            put_file(created["upload"], path, lambda sent: progress.advance(row, sent))
        else:
            put_parts(api, state, cache, lambda sent: progress.advance(row, sent), parts_at_once)
    except ClientError:
        progress.finish(row, "upload failed" + (": run the same command again to resume" if state else ""))
        raise
    progress.finish(row, "uploaded")


def succeeded(outcome: Outcome, waited: bool) -> bool:
    if outcome.error is not None:
        return False
    return outcome.status == "completed" if waited else outcome.uploaded
