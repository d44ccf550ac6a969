"""How often one job writes its upload's row, against the real stack on SQLite: the claim, then one
UPDATE to the final state carrying everything the job learnt (size, placeholder, what the
derivatives weigh, the moderation verdict), and a reprocess of a failed upload one UPDATE alone.

A trigger on the stack's own database notes every row an UPDATE changes, whichever process
made it, so the count is the database's, not the code's word for it.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from cli.stack import PROJECT_ROOT
from imgpipe import uploads
from pipeline_client import Api, make_jpegs, put_file
from stacks import running_stack

WRITES_TABLE = """
CREATE TABLE row_writes (id INTEGER PRIMARY KEY AUTOINCREMENT, upload_id TEXT NOT NULL, status TEXT NOT NULL)
"""
WRITES_TRIGGER = """
CREATE TRIGGER note_row_writes AFTER UPDATE ON uploads
BEGIN INSERT INTO row_writes (upload_id, status) VALUES (new.id, new.status); END
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("job-updates"), moderation="flag") as running:
        database = uploads.connect(running.settings.database)
        database.execute(WRITES_TABLE)
        database.execute(WRITES_TRIGGER)
        database.close()
        yield running


def writes(stack, upload_id: str) -> list[str]:
    """The status the row had after each UPDATE that changed it, in order."""
    database = uploads.connect(stack.settings.database)
    try:
        return [row["status"] for row in
                database.query("SELECT status FROM row_writes WHERE upload_id = ? ORDER BY id", [upload_id])]
    finally:
        database.close()


def upload(stack, path) -> dict:
    api = Api.of(stack)
    created = api.create_for(path)
    put_file(created["upload"], path)
    assert api.wait_final(created["id"])["status"] in ("completed", "failed")
    return uploads.get_upload(uploads.connect(stack.settings.database), created["id"])


def use_workers(stack, **changes) -> None:
    for name in [name for name in stack.processes if name.startswith("worker")]:
        stack.stop_process(name)
    stack.settings = dataclasses.replace(stack.settings, **changes)
    stack.start_worker()


def test_a_completed_upload_is_claimed_then_completed_in_one_update(stack, tmp_path):
    [photo] = make_jpegs(tmp_path, 1, size=(640, 480))
    row = upload(stack, photo)
    assert row["status"] == "completed"
    assert writes(stack, row["id"]) == ["processing", "completed"]
    # What the folded UPDATEs used to write on their own is on the row all the same.
    assert row["derivative_bytes"] > 0 and row["blurhash"] and row["bytes"] == photo.stat().st_size
    assert row["moderation_model"] and row["moderation_flagged"] == 0 and row["moderation_score"] is not None


def test_a_failed_upload_reprocessed_completes_in_one_update(stack, tmp_path):
    [photo] = make_jpegs(tmp_path, 1, size=(640, 480))
    row = upload(stack, photo)
    database = uploads.connect(stack.settings.database)
    database.execute("UPDATE uploads SET status = 'failed', error_code = 'internal', error_message = 'crashed',"
                     " derivative_bytes = NULL WHERE id = ?", [row["id"]])
    database.execute("DELETE FROM row_writes WHERE upload_id = ?", [row["id"]])
    database.close()
    done = subprocess.run([sys.executable, "-m", "cli.main", "reprocess", "--status", "failed"], cwd=PROJECT_ROOT,
                          env=stack.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Done: 1 completed." in done.stdout, done.stdout + done.stderr
    assert writes(stack, row["id"]) == ["completed"]
    again = uploads.get_upload(uploads.connect(stack.settings.database), row["id"])
    assert (again["error_code"], again["derivative_bytes"]) == (None, row["derivative_bytes"])


def test_a_rejected_upload_is_claimed_then_failed_in_one_update_with_its_verdict(stack, tmp_path):
    use_workers(stack, moderation="reject", moderation_threshold=0)
    try:
        [photo] = make_jpegs(tmp_path, 1, size=(640, 480))
        row = upload(stack, photo)
    finally:
        use_workers(stack, moderation="flag", moderation_threshold=0.8)
    assert (row["status"], row["error_code"]) == ("failed", "rejected_by_moderation")
    assert writes(stack, row["id"]) == ["processing", "failed"]
    assert row["moderation_flagged"] == 1 and row["derivative_bytes"] is None
