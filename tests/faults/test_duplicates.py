"""Duplicate events and duplicate PUTs: one set of derivatives, a consistent row, no step back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from imgpipe import uploads
from imgpipe.queues import inflight_key, relayed_count_key
from imgpipe.redis_connection import redis_client
from pipeline_client import Api, curl_put, make_jpegs, upload_all
from polling import eventually


def wait_for_events(connection, key: str, count: int) -> list[bytes]:
    eventually(lambda: connection.llen(key) >= count, 10, f"{count} event(s) in {key}")
    return connection.lrange(key, 0, -1)


def test_the_same_event_twice_processes_once(stack_with, tmp_path):
    stack = stack_with(sweep_min_age=3600.0)
    stack.stop_process("relay")
    api = Api.of(stack)
    [created] = upload_all(api, make_jpegs(tmp_path / "in", 1))
    connection = redis_client(stack.settings, "cli")
    [event] = wait_for_events(connection, stack.settings.events_key, 1)
    connection.rpush(stack.settings.events_key, event, event)

    stack.start_relay()
    assert api.wait_final(created["id"])["status"] == "completed"
    database = uploads.connect(stack.settings.database)
    settled = uploads.get_upload(database, created["id"])
    assert settled["attempts"] == 1

    relayed = int(connection.get(relayed_count_key(stack.settings)))
    connection.rpush(stack.settings.events_key, event)
    eventually(lambda: int(connection.get(relayed_count_key(stack.settings))) > relayed, 10, "the relay to take the repeat")
    assert int(connection.get(relayed_count_key(stack.settings))) == relayed + 1, "the relay handled the repeat"
    assert connection.llen(inflight_key(stack.settings)) == 0
    assert uploads.get_upload(database, created["id"]) == settled


@pytest.mark.engines("sqlite")  # MinIO's If-None-Match decides; the row's path is the one above
def test_two_racing_puts_to_one_url_store_one_original(stack_with, tmp_path):
    stack = stack_with()
    api = Api.of(stack)
    first, second = make_jpegs(tmp_path / "in", 2, size=(800, 600))
    length = max(first.stat().st_size, second.stat().st_size)
    for path in (first, second):  # the URL signs one length; bytes after a JPEG's end are ignored
        path.write_bytes(path.read_bytes().ljust(length, b"\0"))
    created = api.create("race.jpg", "image/jpeg", length)
    start = threading.Barrier(2)

    def put(path):
        start.wait()
        return curl_put(created["upload"], path).stdout

    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(put, (first, second)))

    assert sorted(codes) == ["200", "412"]
    winner = (first, second)[codes.index("200")]
    assert api.wait_final(created["id"])["status"] == "completed"
    record = api.get(f"/uploads/{created['id']}").json()
    assert requests.get(record["results"]["original"], timeout=10).content == winner.read_bytes()
    assert record["image"]["bytes"] == winner.stat().st_size
