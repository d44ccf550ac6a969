"""PostgreSQL dropping every connection of the stack, again and again, while a burst is being
processed (what a restart or a failover does to its clients): every upload still completes,
and none is failed for it."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from imgpipe import uploads
from pipeline_client import Api, make_jpegs, put_file

DROPS = 10
DROP_INTERVAL = 0.3
DROP_WINDOW = 60.0  # seconds within which the DROPS rounds must each find sessions to end


def drop_every_connection(admin, dropped: list[int]) -> None:
    """End every other session on the stack's database, DROPS times: the API's, the relay's and
    the workers', in whatever call each is making. A round that finds none (every process is
    between calls, or waiting to retry after the last drop) does not count: the next one tries."""
    deadline = time.monotonic() + DROP_WINDOW
    while len(dropped) < DROPS and time.monotonic() < deadline:
        rows = admin.query("SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        if ended := sum(1 for row in rows if row["ended"]):
            dropped.append(ended)
        time.sleep(DROP_INTERVAL)


@pytest.mark.engines("postgresql")
def test_a_burst_survives_postgresql_dropping_every_connection(stack_with, tmp_path):
    stack = stack_with(workers=2)
    api = Api.of(stack)
    files = make_jpegs(tmp_path / "in", 60, size=(1200, 800))
    created = [api.create_for(path) for path in files]
    admin = uploads.connect(stack.settings.database)
    dropped: list[int] = []
    dropper = threading.Thread(target=drop_every_connection, args=(admin, dropped))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: put_file(pair[0]["upload"], pair[1]), zip(created[:20], files[:20])))
        dropper.start()
        list(pool.map(lambda pair: put_file(pair[0]["upload"], pair[1]), zip(created[20:], files[20:])))
    dropper.join()

    assert len(dropped) == DROPS, dropped  # each round ended live sessions
    finals = [api.wait_final(upload["id"], timeout=120) for upload in created]
    assert [final["status"] for final in finals] == ["completed"] * 60, [
        (final["id"], final.get("error")) for final in finals if final["status"] != "completed"]
    # A job the outage interrupts gives its attempt back. One whose claim was committed just
    # before its connection went cannot know it was, and counts one: none comes near the last.
    attempts = [row["attempts"] for row in admin.query("SELECT attempts FROM uploads")]
    assert len(attempts) == 60 and max(attempts) < stack.settings.max_attempts, sorted(attempts)
    admin.close()
