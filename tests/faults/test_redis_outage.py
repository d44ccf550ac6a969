"""Redis stopped and started again in the middle of a burst: every upload still completes.

Redis keeps its queued jobs in its append-only file, but every event MinIO tried to send
while it was down is lost: the sweeper has to find those uploads itself.
"""

import pytest

from pipeline_client import Api, make_jpegs, upload_all


def test_a_burst_of_uploads_survives_a_redis_restart(stack_with, tmp_path):
    stack = stack_with()
    api = Api.of(stack)
    files = make_jpegs(tmp_path / "in", 120)

    before = upload_all(api, files[:40])
    stack.stop_process("redis")
    during = upload_all(api, files[40:80])
    health = api.get("/healthz")
    assert health.status_code == 503 and health.json()["down"] == ["redis"]
    stack.start_redis()
    after = upload_all(api, files[80:])

    finals = [api.wait_final(upload["id"], timeout=90) for upload in before + during + after]
    assert [final["status"] for final in finals] == ["completed"] * 120
    assert {name: process.poll() for name, process in stack.processes.items()} == dict.fromkeys(stack.processes)


@pytest.mark.engines("sqlite")  # MinIO's replay from disk; the outage's database path is tested above
def test_with_a_minio_queue_dir_events_raised_during_the_outage_arrive_later(stack_with, tmp_path):
    """The optional second net: the sweeper is kept out (an hour's minimum age), so these
    uploads complete only because MinIO kept their events on disk and replayed them."""
    stack = stack_with(minio_queue_dir=True, sweep_min_age=3600.0)
    api = Api.of(stack)
    files = make_jpegs(tmp_path / "in", 20)
    warm = upload_all(api, files[:5])
    assert [api.wait_final(u["id"])["status"] for u in warm] == ["completed"] * 5

    stack.stop_process("redis")
    during = upload_all(api, files[5:])
    stack.start_redis()

    finals = [api.wait_final(upload["id"], timeout=60) for upload in during]
    assert [final["status"] for final in finals] == ["completed"] * 15
