"""A delete while MinIO is down: the row is deleted at once, the call says storage is unavailable,
and the sweeper removes the objects once MinIO is back and no job can still be writing."""

from __future__ import annotations


from imgpipe.uploads import connect, get_upload
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from stored_objects import objects_of


def test_a_delete_while_storage_is_down_is_finished_by_the_sweeper(stack_with, tmp_path):
    stack = stack_with(processing_deadline=10)
    api, storage = Api.of(stack), Storage(stack.settings, ROOT)
    [photo] = make_jpegs(tmp_path / "in", 1)
    created = api.create_for(photo, formats=["jpeg", "webp"])
    put_file(created["upload"], photo)
    assert api.wait_final(created["id"])["status"] == "completed"
    stack.stop_process("minio")

    response = api.delete(created["id"])
    assert (response.status_code, response.json()["error"]["code"]) == (503, "storage_unavailable")
    assert api.get(f"/uploads/{created['id']}/status").json()["status"] == "deleted"
    row = get_upload(connect(stack.settings.database), created["id"])
    assert row["purged_at"] is None

    # The relay's sweeper waits while the objects are counted: back with MinIO, it may remove
    # them before a count made after the restart.
    stack.stop_process("relay")
    stack.start_minio()
    assert len(objects_of(storage, created["id"], created["key"])) == 7
    stack.start_relay()
    eventually(lambda: objects_of(storage, created["id"], created["key"]) == [], 30,
               "the sweeper to remove the deleted upload's objects")
    assert get_upload(connect(stack.settings.database), created["id"])["purged_at"] is not None
