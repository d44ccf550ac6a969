"""What the cluster tests do as clients, and what they check afterwards.

Uploads are created on the two API hosts in turn (as a load balancer would send them) and
their originals PUT to the four MinIO nodes in turn. An upload URL is signed for the name
every node answers to, so the client connects to the node it picked and sends that name as
the Host, as it would behind DNS round robin; a node that does not answer is passed over
for the next one, and a 503 (S3's "slow down": MinIO short of write quorum for a moment after
a node died) is tried again on the next one, as S3 clients do. Every call has a timeout: a
cluster without write quorum holds a PUT without answering.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from PIL import Image, ImageStat

from cluster_stack import API_HOSTS, MINIO_HOSTS, MINIO_NAME, MINIO_PORT, Cluster
from imgpipe import uploads
from imgpipe.keys import DERIVATIVES
from polling import eventually

HTTP_TIMEOUT = 10.0
PUT_TIMEOUT = 30.0
PUT_DEADLINE = 200.0
RETRY_503_FOR = 30.0
# Ranks of the statuses a row passes through; a row's rank only ever goes up.
RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}
# What the derivatives of the test pictures measure (fit inside 1024x1024 and 300x300, never upscaled).
EXPECTED_SIZES = {
    (320, 240): {"resized": (320, 240), "compressed": (320, 240), "thumbnail": (300, 225)},
    (1600, 1200): {"resized": (1024, 768), "compressed": (1600, 1200), "thumbnail": (300, 225)},
}


@dataclass
class Sent:
    """One upload as the client made it: which API host created it, which node took its PUT."""

    id: str
    key: str
    data: bytes
    api_host: str
    node: str
    status: int
    refused_by: list[str] = field(default_factory=list)
    finished_at: float = 0.0

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()


class ClusterClient:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.nodes = [(node, cluster.address(node)) for node in MINIO_HOSTS]
        self.apis = list(zip(API_HOSTS, cluster.api_urls))
        self.local = threading.local()

    def http(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["Authorization"] = f"Bearer {self.cluster.settings.api_token}"
        return self.local.session

    def send(self, paths: list[Path], *, threads: int = 8, first: int = 0, on_sent=None) -> list[Sent]:
        """Create and PUT every file, `threads` at a time; the n-th file (counting from `first`)
        goes to API host n mod 2 and MinIO node n mod 4."""
        def one(index_path):
            index, path = index_path
            sent = self.send_one(path, index)
            if on_sent is not None:
                on_sent(sent)
            return sent

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, enumerate(paths, start=first)))

    def send_one(self, path: Path, index: int) -> Sent:
        data = path.read_bytes()
        api_host, created = self.create(path.name, len(data), index)
        node, status, refused_by = self.put(created["upload"], data, index % len(self.nodes))
        return Sent(created["id"], created["key"], data, api_host, node, status, refused_by, time.monotonic())

    def create(self, filename: str, size: int, index: int) -> tuple[str, dict]:
        """POST /uploads to API host `index` mod 2; a 503 (storage unavailable: the API's own
        connections to a node that died) is retried on the other host, as the answer asks."""
        deadline = time.monotonic() + RETRY_503_FOR
        for attempt in itertools.count(index):
            api_host, api_url = self.apis[attempt % len(self.apis)]
            response = self.http().post(f"{api_url}/uploads", timeout=HTTP_TIMEOUT,
                                        json={"filename": filename, "content_type": "image/jpeg", "size": size})
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 201, f"POST /uploads on {api_host}: {response.status_code} {response.text}"
        return api_host, response.json()

    def put(self, upload: dict, data: bytes, start: int) -> tuple[str, int, list[str]]:
        """PUT to node `start`, or, when it cannot be reached, does not answer in time or answers
        503, to the next ones in turn until PUT_DEADLINE; returns the node that took it, its
        status and the nodes that could not be reached. A 412 after such a try means an earlier
        one did store the original (the URL refuses a second write)."""
        url = urlsplit(upload["url"])
        assert url.netloc == f"{MINIO_NAME}:{MINIO_PORT}", f"upload URL signed for {url.netloc}"
        headers = {**upload["headers"], "Host": url.netloc}
        refused_by, slowed_by = [], []
        deadline = time.monotonic() + PUT_DEADLINE
        for offset in itertools.count():
            node, address = self.nodes[(start + offset) % len(self.nodes)]
            connection = http.client.HTTPConnection(address, MINIO_PORT, timeout=PUT_TIMEOUT)
            try:
                connection.request("PUT", f"{url.path}?{url.query}", body=data, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except OSError as error:
                refused_by.append(f"{node}: {error!r}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no MinIO node took the PUT within {PUT_DEADLINE:.0f} s: {refused_by}")
                continue
            finally:
                connection.close()
            if response.status == 200 or (response.status == 412 and (refused_by or slowed_by)):
                return node, response.status, refused_by
            if response.status == 503 and time.monotonic() < deadline:
                slowed_by.append(node)
                time.sleep(0.2)
                continue
            raise AssertionError(f"PUT on {node} answered {response.status} (after 503 from {slowed_by}):"
                                 f" {body[:500]!r}")

    def get_via(self, url: str, node: str) -> bytes:
        """GET a presigned URL (signed for the shared name) from one node."""
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(self.cluster.address(node), MINIO_PORT, timeout=HTTP_TIMEOUT)
        try:
            connection.request("GET", f"{parts.path}?{parts.query}", headers={"Host": parts.netloc})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200, f"GET {parts.path} on {node}: {response.status} {body[:300]!r}"
        return body


class StatusLog:
    """Reads every row's status from the database every few tens of milliseconds, in a thread of
    its own, and keeps each row's distinct statuses in the order seen."""

    def __init__(self, cluster: Cluster, interval: float = 0.05):
        self.cluster = cluster
        self.interval = interval
        self.seen: dict[str, list[str]] = {}
        self.polls = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-log", daemon=True)

    def __enter__(self) -> "StatusLog":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            database = self.cluster.database()
            while not self._stop.is_set():
                for upload_id, status in database.execute("SELECT id, status FROM uploads").fetchall():
                    history = self.seen.setdefault(upload_id, [])
                    if not history or history[-1] != status:
                        history.append(status)
                self.polls += 1
                self._stop.wait(self.interval)
        except BaseException as error:  # noted, and raised in the test by wait_final
            self.error = error

    def latest(self, upload_id: str) -> str | None:
        history = self.seen.get(upload_id)
        return history[-1] if history else None

    def wait_final(self, ids: list[str], timeout: float) -> dict[str, str]:
        """The latest status of each upload, once every one is final; the poller's own error, if it failed."""
        def final() -> dict[str, str] | None:
            if self.error is not None:
                raise self.error
            latest = {upload_id: self.latest(upload_id) for upload_id in ids}
            return latest if all(RANK.get(status) == 2 for status in latest.values()) else None

        def waiting() -> str:
            left = {upload_id: self.latest(upload_id) for upload_id in ids if RANK.get(self.latest(upload_id)) != 2}
            return f"{len(left)} upload(s) to be final: {left}"

        return eventually(final, timeout, what=waiting, interval=0.1)

    def moved_back(self) -> dict[str, list[str]]:
        """Rows whose statuses, in the order seen, did not only go forward."""
        return {upload_id: history for upload_id, history in self.seen.items()
                if any(RANK[later] <= RANK[earlier] for earlier, later in zip(history, history[1:]))}


def check_outputs(cluster: Cluster, client: ClusterClient, sent: list[Sent], *, read_from: list[str]) -> None:
    """Every upload completed; its original is the bytes sent; each derivative exists once, under
    its own key, is a JPEG of the size the rules give, and shows the same picture (its mean
    colour is the original's). Objects are read through the API's result URLs, from the nodes
    in read_from in turn."""
    storage = cluster.node_storage(read_from[0])
    keys = [item.object_name for item in storage.client.list_objects(storage.bucket, recursive=True)]
    database = cluster.database()
    rows = {upload.id: uploads.get_upload(database, upload.id) for upload in sent}
    expected = {key for upload in sent for key in [upload.key, *uploads.derivative_keys(rows[upload.id])]}
    assert len(expected) == 4 * len(sent), "each upload names its original and three derivatives"
    assert len(keys) == len(set(keys)) and set(keys) == expected, (
        f"bucket holds {len(keys)} objects, expected {len(expected)}: "
        f"extra {sorted(set(keys) - expected)[:5]}, missing {sorted(expected - set(keys))[:5]}")

    def check(index_upload):
        index, upload = index_upload
        row = rows[upload.id]
        assert row["status"] == "completed", row
        stat = storage.client.stat_object(storage.bucket, upload.key)
        assert (stat.size, stat.etag.strip('"')) == (len(upload.data), upload.md5), upload.id
        original = Image.open(io.BytesIO(upload.data))
        assert (row["width"], row["height"], row["bytes"], row["format"]) == (*original.size, len(upload.data), "JPEG")
        api_url = client.apis[index % len(client.apis)][1]
        results = client.http().get(f"{api_url}/uploads/{upload.id}/results", timeout=HTTP_TIMEOUT).json()
        mean = ImageStat.Stat(original.convert("RGB")).mean
        for kind in DERIVATIVES:
            node = read_from[index % len(read_from)]
            made = Image.open(io.BytesIO(client.get_via(results[kind], node)))
            assert made.format == "JPEG" and made.size == EXPECTED_SIZES[original.size][kind], (upload.id, kind, made.size)
            made_mean = ImageStat.Stat(made.convert("RGB")).mean
            assert max(abs(a - b) for a, b in zip(mean, made_mean)) < 4, (upload.id, kind, mean, made_mean)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(check, enumerate(sent)))
