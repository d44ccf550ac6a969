"""The sweeper under many abandoned uploads: how long an upload whose event was lost waits, and
how many requests per second the sweeper makes to MinIO meanwhile.

Abandoned uploads are rows whose URL was handed out and never used (people who open the page
and leave), inserted straight into the database with their URLs still valid. The lost event
is made by taking the bucket's notification away for the one PUT, so MinIO never raises it.
MinIO's requests are counted by MinIO itself (bench.minio_requests).
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import requests

from bench.minio_requests import request_counts
from cli.stack import Stack
from imgpipe import uploads
from imgpipe.keys import new_upload_id, original_key
from imgpipe.processes import process_stat
from imgpipe.queues import relayed_count_key
from imgpipe.redis_connection import redis_client
from imgpipe.storage import LIST_PAGE, Storage
from imgpipe.store_identities import ROOT
from notify_config.apply import apply


def insert_abandoned(database, count: int, ttl: float) -> None:
    """`count` pending rows whose upload URLs stay valid for `ttl` seconds and are never used."""
    expires_at = uploads.utcnow() + timedelta(seconds=ttl)
    for _ in range(count):
        upload_id = new_upload_id()
        uploads.insert_upload(database, upload_id=upload_id, filename="left-open.jpg", content_type="image/jpeg",
                              key=original_key(upload_id, "jpg"), declared_size=None, callback_url=None,
                              upload_expires_at=expires_at)


def requests_between(before, after) -> dict[str, int]:
    return {api: after[api] - before[api] for api in sorted(after) if after[api] != before[api]}


@contextlib.contextmanager
def events_lost(stack: Stack):
    """Objects written inside raise no event: the bucket's notification is taken away, and
    put back after. Checks that no event reached Redis meanwhile."""
    storage = Storage(stack.settings, ROOT)
    events = redis_client(stack.settings, "cli")
    relayed_key = relayed_count_key(stack.settings)
    relayed_before = int(events.get(relayed_key) or 0)
    storage.client.delete_bucket_notification(stack.settings.s3_bucket_name)
    try:
        yield storage
    finally:
        apply(storage.client, stack.settings.s3_bucket_name)
    time.sleep(0.5)
    raised = events.llen(stack.settings.events_key) + int(events.get(relayed_key) or 0) - relayed_before
    assert raised == 0, "MinIO raised an event after all: nothing was lost"


def owner(stack: Stack) -> dict:
    return {"Authorization": f"Bearer {stack.settings.api_token}"}


def put_without_event(stack: Stack, image: bytes) -> tuple[str, float]:
    """Create an upload and PUT it as a client does, its event lost; returns the upload's id
    and when the PUT was answered (time.monotonic)."""
    with events_lost(stack):
        created = requests.post(f"{stack.api_url}/uploads", timeout=10, headers=owner(stack),
                                json={"filename": "lost.jpg", "content_type": "image/jpeg", "size": len(image)})
        created.raise_for_status()
        body = created.json()
        put = requests.put(body["upload"]["url"], data=image, headers=body["upload"]["headers"], timeout=30)
        answered = time.monotonic()
        put.raise_for_status()
    return body["id"], answered


def wait_final(stack: Stack, upload_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "pending"
    while time.monotonic() < deadline:
        status = requests.get(f"{stack.api_url}/uploads/{upload_id}/status", headers=owner(stack),
                              timeout=10).json()["status"]
        if status in (uploads.COMPLETED, uploads.FAILED):
            break
        time.sleep(0.1)
    return status


def lost_upload_among_abandoned(stack: Stack, image: bytes, *, abandoned: int, settle: float = 6.0,
                                window: float = 10.0, timeout: float = 60.0) -> dict:
    """Insert the abandoned rows, let the sweeper meet them, count its requests over `window`
    seconds with nothing else going on, then PUT one upload without its event and wait for it.

    Returns seconds_to_final (from the PUT's answer; None past `timeout`), its status, the
    sweeper's requests/s with only abandoned rows pending (idle_rps) and the requests MinIO
    answered while the lost upload was found and processed (recovery_requests: these include
    the test's PUT and the worker's own reads and writes)."""
    database = uploads.connect(stack.settings.database)
    began = time.monotonic()
    insert_abandoned(database, abandoned, stack.settings.upload_url_ttl)
    inserted_in = time.monotonic() - began
    time.sleep(settle)
    before = request_counts(stack.settings)
    time.sleep(window)
    idle = requests_between(before, request_counts(stack.settings))
    upload_id, answered = put_without_event(stack, image)
    before = request_counts(stack.settings)
    status = wait_final(stack, upload_id, timeout)
    finished = time.monotonic()
    recovery = requests_between(before, request_counts(stack.settings))
    return {
        "abandoned": abandoned,
        "inserted_in_s": round(inserted_in, 1),
        "status": status,
        "seconds_to_final": round(finished - answered, 1) if status in (uploads.COMPLETED, uploads.FAILED) else None,
        "idle_window_s": window,
        "idle_requests": idle,
        "idle_rps": round(sum(idle.values()) / window, 2),
        "recovery_requests": recovery,
        "recovery_rps": round(sum(recovery.values()) / max(finished - answered, 0.001), 2),
        "sweep_interval": stack.settings.sweep_interval,
        "sweep_min_age": stack.settings.sweep_min_age,
    }


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used so far, in ms."""
    return process_stat(pid).cpu_seconds * 1000


def request_costs(stack: Stack, heads: int, lists: int) -> dict:
    """What each way of looking at pending rows costs: a HEAD of a key that is not there (an
    abandoned upload, the old sweeper's request per row) against one LIST page of 1000 keys
    and one of a nearly empty range (the sweeper's request per pass). Wall time per request
    as the relay sees it, and MinIO's own CPU time per request."""
    storage = Storage(stack.settings, ROOT)
    minio = stack.processes["minio"].pid
    prefix = "bench-list/"
    for _ in range(LIST_PAGE):
        storage.write(f"{prefix}{new_upload_id()}.jpg", b"x", "image/jpeg")

    def timed(count: int, request) -> dict:
        cpu_before, began = cpu_ms(minio), time.perf_counter()
        for _ in range(count):
            request()
        wall = (time.perf_counter() - began) * 1000 / count
        return {"wall_ms": round(wall, 3), "minio_cpu_ms": round((cpu_ms(minio) - cpu_before) / count, 3), "n": count}

    head = timed(heads, lambda: storage.size_of(original_key(new_upload_id(), "jpg")))
    full_page = timed(lists, lambda: storage.list_after(prefix, prefix))
    assert len(storage.list_after(prefix, prefix)) == LIST_PAGE
    last_key = storage.list_after(prefix, prefix)[-2][0]
    nearly_empty = timed(lists, lambda: storage.list_after(prefix, last_key))
    return {"head_missing_key": head, "list_page_1000_keys": full_page, "list_page_1_key": nearly_empty}
