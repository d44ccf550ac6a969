"""`imgpipe upload` in parts, killed and run again: it resumes and sends only the missing parts.

The parts are counted from MinIO's own records: its ListParts before the second run, and its
audit log (an audit webhook target of the test's) of every UploadPart it answered. A proxy in
front of MinIO slows the upload down to a pace at which the CLI can be killed in the middle.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from cli.stack import PROJECT_ROOT, free_port
from imgpipe.multipart import DEFAULT_PART_SIZE
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api
from polling import eventually
from stacks import running_stack

BYTES_PER_SECOND = 16 * 1024 * 1024
PARTS = 5


class AuditLog(ThreadingHTTPServer):
    """MinIO's audit webhook target: keeps every entry MinIO posts."""

    def __init__(self):
        self.entries: list[dict] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N805 - the server is `self` here
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                with self.lock:
                    self.entries += [json.loads(line) for line in body.splitlines() if line.strip()]
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def part_puts(self, upload_id: str) -> Counter:
        """Part number -> how many UploadParts of `upload_id` MinIO answered 200."""
        with self.lock:
            return Counter(int(entry["requestQuery"]["partNumber"]) for entry in self.entries
                           if entry.get("api", {}).get("name") == "PutObjectPart"
                           and entry["api"].get("statusCode") == 200
                           and entry.get("requestQuery", {}).get("uploadId") == upload_id)


class SlowProxy:
    """Loopback TCP proxy to MinIO that passes at most BYTES_PER_SECOND towards it, all
    connections together."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.next_free = time.monotonic()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, target, slow: bool):
        try:
            while chunk := source.recv(64 * 1024):
                if slow:
                    with self.lock:
                        start = max(self.next_free, time.monotonic())
                        self.next_free = start + len(chunk) / BYTES_PER_SECOND
                    time.sleep(max(0.0, start - time.monotonic()))  # the pace, not a wait for an outcome
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def close(self):
        self.listener.close()


@pytest.fixture(scope="module")
def audit():
    server = AuditLog()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, audit):
    minio_port = free_port()
    proxy = SlowProxy(minio_port)
    with pytest.MonkeyPatch.context() as env:
        # MinIO inherits what the stack does not set itself.
        env.setenv("MINIO_AUDIT_WEBHOOK_ENABLE_TEST", "on")
        env.setenv("MINIO_AUDIT_WEBHOOK_ENDPOINT_TEST", f"http://127.0.0.1:{audit.server_address[1]}/")
        with running_stack(tmp_path_factory.mktemp("multipart-cli"), s3_endpoint_url=f"http://127.0.0.1:{minio_port}",
                           s3_base_url=f"http://127.0.0.1:{proxy.port}", multipart_threshold_mb=8) as running:
            yield running
    proxy.close()


def cli_upload(stack, cache: Path, path: Path) -> subprocess.Popen:
    env = {**os.environ, "IMGPIPE_API": stack.api_url, "IMGPIPE_API_TOKEN": stack.settings.api_token,
           "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "upload", "--json", "--parts-at-once", "2",
                             "--timeout", "60", str(path)], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kept_state(cache: Path) -> dict | None:
    states = list((cache / "imgpipe" / "uploads").glob("*.json"))
    return json.loads(states[0].read_text()) if states else None


def test_the_cli_killed_in_the_middle_resumes_and_sends_only_the_missing_parts(stack, audit, tmp_path):
    side = int(((PARTS - 0.5) * DEFAULT_PART_SIZE / 1.15) ** 0.5)
    picture = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(picture, "JPEG", quality=95)
    path = tmp_path / "panorama.jpg"
    path.write_bytes(picture.getvalue())
    assert -(-path.stat().st_size // DEFAULT_PART_SIZE) == PARTS
    store = Storage(stack.settings, ROOT)
    cache = tmp_path / "cache"

    first = cli_upload(stack, cache, path)
    state = eventually(lambda: kept_state(cache), timeout=30, what="the CLI to keep its state")
    eventually(lambda: len(store.parts(state["key"], state["upload_id"]) or []) >= 2, timeout=30,
               what="two parts at the store")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    stored_before = {part.number for part in store.parts(state["key"], state["upload_id"])}
    assert 2 <= len(stored_before) < PARTS, stored_before

    second = cli_upload(stack, cache, path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"resuming upload {state['id']}" in err
    [outcome] = json.loads(out)["uploads"]
    assert (outcome["id"], outcome["status"], outcome["resumed"]) == (state["id"], "completed", True)
    # MinIO answered one UploadPart per part in all: the second run sent only those it did not hold.
    puts = eventually(lambda: (counted := audit.part_puts(state["upload_id"])) and sum(counted.values()) >= PARTS
                      and counted, timeout=30, what="MinIO's audit of every part")
    assert puts == Counter(range(1, PARTS + 1)), puts
    assert store.stat(state["key"]).etag.endswith(f"-{PARTS}")
    assert store.client.get_object(store.bucket, state["key"]).read() == path.read_bytes()
    assert kept_state(cache) is None, "a finished upload leaves no state behind"
    results = Api.of(stack).get(f"/uploads/{state['id']}/results").json()
    assert all(results[version] for version in ("resized", "compressed", "thumbnail"))


def test_an_interrupted_upload_that_can_no_longer_be_resumed_is_started_again(stack, tmp_path):
    side = int((1.5 * DEFAULT_PART_SIZE / 1.15) ** 0.5)
    picture = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(picture, "JPEG", quality=95)
    path = tmp_path / "again.jpg"
    path.write_bytes(picture.getvalue())
    cache = tmp_path / "cache"
    first = cli_upload(stack, cache, path)
    state = eventually(lambda: kept_state(cache), timeout=30, what="the CLI to keep its state")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    api = Api.of(stack)
    assert api.http.delete(f"{api.base}/uploads/{state['id']}/multipart", timeout=10).status_code == 200

    second = cli_upload(stack, cache, path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"the interrupted upload {state['id']} can no longer be resumed; starting again" in err
    [outcome] = json.loads(out)["uploads"]
    assert outcome["status"] == "completed" and outcome["id"] != state["id"] and not outcome["resumed"]
    assert api.get(f"/uploads/{state['id']}/status").json()["error"]["code"] == "upload_aborted"
