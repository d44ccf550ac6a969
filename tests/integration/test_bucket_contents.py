"""The bucket holds only what it should, against the real stack: the store itself refuses a PUT
of any length but the declared one, rejected originals are removed, deleting removes every
object in every format (before, during and after processing), and listing pages neither skip
nor repeat an upload while new ones arrive."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest
import requests
from click.testing import CliRunner
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

import imagegen
from cli.main import cli
from imgpipe.uploads import connect, get_upload, rows_by_id
from imgpipe.formats import writable_formats
from imgpipe.keys import derivative_key, new_upload_id, original_key, upload_id_from_key
from imgpipe.queues import fetch_job
from imgpipe.redis_connection import redis_client
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import curl_put, put_file
from polling import eventually
from processor.housekeeping import STEPS, Housekeeping
from processor.jobs import job_id_for
from stored_objects import objects_of
from webhook_receiver import webhook_receiver


@pytest.fixture
def storage(stack):
    return Storage(stack.settings, ROOT)


def bucket(storage: Storage) -> dict[str, int]:
    return {item.object_name: item.size for item in storage.client.list_objects(storage.bucket, recursive=True)}


def left_behind(storage: Storage, upload_id: str, key: str) -> list[str]:
    return objects_of(storage, upload_id, key)


def photo(path, size=(800, 600)):
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG", quality=90)
    return path


def put_with_curl(upload: dict, path, *extra: str) -> tuple[str, int]:
    """curl's HTTP status and how many bytes of the body it sent."""
    headers = [arg for name, value in upload["headers"].items() if name != "Content-Length"
               for arg in ("-H", f"{name}: {value}")]
    result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-T", str(path),
                             *headers, *extra, upload["url"]], capture_output=True, text=True, timeout=60)
    status, sent = result.stdout.split()
    return status, int(sent)


def test_the_store_refuses_a_put_over_the_limit_or_of_another_length_and_stores_nothing(api, stack, storage,
                                                                                         tmp_path):
    limit = stack.settings.max_upload_bytes
    oversized = tmp_path / "oversized.jpg"
    with open(oversized, "wb") as out:
        out.truncate(limit + 1)
    small = tmp_path / "small.jpg"
    small.write_bytes(b"\xff\xd8" + b"x" * 998)
    at_limit = api.create("oversized.jpg", "image/jpeg", limit, multipart=False)  # one PUT, whatever its size
    declared = api.create("small.jpg", "image/jpeg", 1001)
    before = bucket(storage)

    # With Expect: 100-continue (curl's default for large bodies) MinIO refuses before the body is sent;
    # without it the whole body goes and is refused all the same.
    assert put_with_curl(at_limit["upload"], oversized) == ("403", 0)
    assert put_with_curl(at_limit["upload"], oversized, "-H", "Expect:")[0] == "403"
    assert put_with_curl(declared["upload"], small)[0] == "403"
    assert put_with_curl(declared["upload"], oversized)[0] == "403"
    chunked = requests.put(declared["upload"]["url"], data=iter([b"x" * 1001]), timeout=10,
                           headers={name: value for name, value in declared["upload"]["headers"].items()
                                    if name != "Content-Length"})
    assert chunked.status_code in (403, 411), chunked.text
    assert bucket(storage) == before
    assert [api.get(f"/uploads/{created['id']}/status").json()["status"] for created in (at_limit, declared)] == [
        "pending", "pending"]

    # A real picture, so the original stays: a worker removes a refused one, maybe before it is measured.
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(imagegen.photo_like_jpeg(64, 48, seed=3))
    exact = api.create_for(photo)
    assert curl_put(exact["upload"], photo).stdout == "200"
    assert storage.size_of(exact["key"]) == photo.stat().st_size


def fail_codes_by_file(tmp_path) -> dict:
    files = {
        "empty.png": (b"", "empty_file"),
        "notes.jpg": (b"shopping list\n" * 20, "not_an_image"),
        "truncated.jpg": (imagegen.truncated(imagegen.photo_like_jpeg(400, 300, seed=7)), "corrupt_image"),
        "bomb.png": (imagegen.pixel_bomb_png(30000, 30000), "too_many_pixels"),
        "icon.ico": (imagegen.encode(Image.new("RGB", (32, 32), (255, 0, 0)), "ICO"), "unsupported_format"),
    }
    paths = {}
    for name, (data, code) in files.items():
        (tmp_path / name).write_bytes(data)
        paths[tmp_path / name] = code
    return paths


def test_each_rejected_original_is_removed_while_its_row_stays(api, storage, tmp_path):
    created = {}
    for path, code in fail_codes_by_file(tmp_path).items():
        upload = api.create_for(path, "image/png")
        put_file(upload["upload"], path)
        created[code] = upload
    for code, upload in created.items():
        status = api.wait_final(upload["id"])
        assert (status["status"], status["error"]["code"]) == ("failed", code)
        eventually(lambda: storage.size_of(upload["key"]) is None, what=f"removing the {code} original")
        record = api.get(f"/uploads/{upload['id']}").json()
        assert (record["status"], record["error"]["code"], record["key"]) == ("failed", code, upload["key"])
        assert record["error"]["message"] and record["results"]["original"] is None


def all_formats_upload(api, tmp_path, name: str, size=(800, 600), **extra) -> tuple[dict, object]:
    path = photo(tmp_path / name, size)
    created = api.create_for(path, formats=list(writable_formats()), **extra)
    return created, path


def test_deleting_a_completed_upload_removes_every_object_in_every_format(api, stack, storage, tmp_path):
    created, path = all_formats_upload(api, tmp_path, "done.jpg")
    put_file(created["upload"], path)
    assert api.wait_final(created["id"], timeout=60)["status"] == "completed"
    present = left_behind(storage, created["id"], created["key"])
    assert len(present) == 1 + 3 * len(writable_formats())

    response = api.delete(created["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["error"]) == (created["id"], "deleted", None)
    assert left_behind(storage, created["id"], created["key"]) == []
    again = api.delete(created["id"])
    assert (again.status_code, again.json()) == (200, body)

    record = api.get(f"/uploads/{created['id']}").json()
    assert (record["status"], record["deleted_at"], record["image"]["width"]) == ("deleted", body["updated_at"], 800)
    results = api.get(f"/uploads/{created['id']}/results").json()
    assert results["status"] == "deleted" and results["original"] is None and results["expires_at"] is None
    assert all(url is None for urls in results["formats"].values() for url in urls.values())
    row = get_upload(connect(stack.settings.database), created["id"])
    assert row["purged_at"] is not None


@pytest.mark.parametrize("outcome", ["completed", "failed"])
def test_deleting_removes_an_object_a_crashed_attempt_left_unnamed(api, stack, storage, tmp_path, outcome):
    """An attempt that wrote a derivative and died before its UPDATE, and whose retry encoded other
    bytes (the presets changed in between), left an object under a key no row names."""
    if outcome == "completed":
        path = photo(tmp_path / "done.jpg")
    else:
        path = tmp_path / "not-an-image.jpg"
        path.write_bytes(b"plain text, not a picture")
    created = api.create_for(path, "image/jpeg")
    put_file(created["upload"], path)
    assert api.wait_final(created["id"], timeout=60)["status"] == outcome
    unnamed = derivative_key("resized", created["id"], "jpeg", version="0123456789abcdef")
    storage.write(unnamed, b"bytes of an earlier recipe", "image/jpeg")
    assert unnamed in left_behind(storage, created["id"], created["key"])

    assert api.delete(created["id"]).status_code == 200
    assert left_behind(storage, created["id"], created["key"]) == []
    assert get_upload(connect(stack.settings.database), created["id"])["purged_at"] is not None


def test_deleting_while_the_job_runs_leaves_no_derivative(api, stack, storage, tmp_path):
    created, path = all_formats_upload(api, tmp_path, "big.jpg", size=(3000, 2000))
    put_file(created["upload"], path)
    eventually(lambda: api.get(f"/uploads/{created['id']}/status").json()["status"] != "pending",
               what="a worker claiming the upload")
    assert api.delete(created["id"]).json()["status"] == "deleted"

    connection = redis_client(stack.settings, "cli")
    job = fetch_job(connection, job_id_for(created["id"]))
    eventually(lambda: job.get_status(refresh=True) in ("finished", "failed"), timeout=60, what="the job ending")
    assert job.return_value() == "deleted", "the job was still running when the upload was deleted"
    assert left_behind(storage, created["id"], created["key"]) == []
    assert api.get(f"/uploads/{created['id']}/status").json()["status"] == "deleted"


def test_a_delete_is_announced_to_the_callback(api, tmp_path):
    path = photo(tmp_path / "hooked.jpg", (400, 300))
    with webhook_receiver() as hook:
        created = api.create_for(path, callback_url=f"{hook.url}/hook")
        put_file(created["upload"], path)
        assert api.wait_final(created["id"])["status"] == "completed"
        hook.wait_for(1)
        api.delete(created["id"])
        completed, deleted = hook.wait_for(2)
    assert json.loads(completed.body)["status"] == "completed"
    sent = json.loads(deleted.body)
    assert (sent["id"], sent["status"], sent["results"]["thumbnail"]) == (created["id"], "deleted", None)
    assert sent["deleted_at"] is not None


def test_deleting_an_unknown_upload_is_404(api):
    for unknown in ("0" * 32, "not-an-id"):
        response = api.delete(unknown)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def all_listed(api, **params) -> list[str]:
    ids, cursor = [], None
    while True:
        page = api.http.get(f"{api.base}/uploads", params={**params, **({"cursor": cursor} if cursor else {})},
                            timeout=10).json()
        ids += [upload["id"] for upload in page["uploads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def test_pages_neither_skip_nor_repeat_while_uploads_are_created(api):
    for _ in range(7):
        api.create()
    before = all_listed(api, limit=100)
    arrived, seen, cursor = [], [], None
    while True:
        page = api.http.get(f"{api.base}/uploads", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                            timeout=10).json()
        assert len(page["uploads"]) <= 3
        seen += [upload["id"] for upload in page["uploads"]]
        arrived += [api.create()["id"] for _ in range(2)]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == before, "every upload once, newest first, none of those created meanwhile"
    assert all_listed(api, limit=100)[:len(arrived)] == arrived[::-1]
    created_at = [api.get(f"/uploads/{upload_id}/status").json()["created_at"] for upload_id in before]
    assert created_at == sorted(created_at, reverse=True)


def test_a_status_filter_pages_through_that_status_only(api, tmp_path):
    path = photo(tmp_path / "listed.jpg", (200, 150))
    created = api.create_for(path)
    put_file(created["upload"], path)
    assert api.wait_final(created["id"])["status"] == "completed"
    completed = all_listed(api, status="completed", limit=2)
    assert created["id"] == completed[0]
    assert {api.get(f"/uploads/{upload_id}/status").json()["status"] for upload_id in completed} == {"completed"}
    api.delete(created["id"])
    assert created["id"] not in all_listed(api, limit=100)
    assert all_listed(api, status="deleted", limit=100)[0] == created["id"]


def test_orphans_are_removed_a_page_at_a_time(stack, storage):
    """Objects no upload will use (no row, a name imgpipe never makes, a deleted row's late PUT) go;
    the originals of uploads in progress or completed stay. The relay of this stack keeps orphans an
    hour; here the orphan step is run directly with no minimum age and a page of two keys, and with
    no pending row old enough to need the pass over recent originals, so every LIST is the walk's."""
    settings = dataclasses.replace(stack.settings, orphan_min_age=0, sweep_min_age=10 ** 6,
                                   events_key="test:orphan-walk")
    connection = redis_client(settings, "cli")
    database = connect(settings.database)
    no_row = original_key(new_upload_id(), "jpg")
    for key in (no_row, "originals/notes.txt"):
        storage.write(key, b"left over", "image/jpeg")
    originals = [key for key in bucket(storage) if key.startswith("originals/")]
    rows = rows_by_id(database, [upload_id_from_key(key) for key in originals if upload_id_from_key(key)])
    in_use = {row["key"] for row in rows.values() if row["status"] in ("pending", "processing", "completed")}
    assert len(originals) - len(in_use) >= 2

    [orphans] = [step for step in STEPS if step.name == "orphans"]
    house = Housekeeping(settings, connection, database, storage, drive=None, steps=(orphans,), list_page=2)
    removed, sweeps = 0, 0
    while True:
        removed += house.sweep()["orphans"]
        sweeps += 1
        if not connection.get("test:orphan-walk:orphans-after"):
            break
    assert sweeps == len(originals) // 2 + 1, "one LIST of two keys per sweep, then the walk starts over"
    assert removed == len(set(originals) - in_use)
    assert {key for key in bucket(storage) if key.startswith("originals/")} == in_use


def metric_values(api) -> dict:
    text = api.get("/metrics").text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_stored_bytes_and_deleted_uploads(api, tmp_path):
    path = photo(tmp_path / "counted.jpg", (640, 480))
    created = api.create_for(path)
    put_file(created["upload"], path)
    assert api.wait_final(created["id"])["status"] == "completed"
    before = metric_values(api)
    api.delete(created["id"])
    after = metric_values(api)
    original = ("imgpipe_stored_bytes", (("kind", "original"),))
    derivatives = ("imgpipe_stored_bytes", (("kind", "derivatives"),))
    assert before[original] - after[original] == path.stat().st_size
    assert before[derivatives] - after[derivatives] > 0
    deleted = ("imgpipe_uploads", (("status", "deleted"),))
    assert after[deleted] == before[deleted] + 1


@pytest.fixture
def run(stack):
    def invoke(*args: str):
        result = CliRunner().invoke(cli, list(args), env={"IMGPIPE_API": stack.api_url,
                                                        "IMGPIPE_API_TOKEN": stack.settings.api_token})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result
    return invoke


def test_the_cli_lists_and_deletes(run, api, storage, tmp_path):
    paths = [photo(tmp_path / f"cli-{index}.jpg", (300, 200)) for index in range(2)]
    uploaded = json.loads(run("upload", "--json", *map(str, paths)).stdout)["uploads"]
    ids = [entry["id"] for entry in uploaded]

    listed = run("ls", "--limit", "2")
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert {line[0] for line in lines} == set(ids)
    assert {(line[1], line[3]) for line in lines} == {("completed", "cli-0.jpg"), ("completed", "cli-1.jpg")}
    as_json = json.loads(run("ls", "--json", "--status", "completed", "--limit", "150").stdout)["uploads"]
    assert len(as_json) == len({upload["id"] for upload in as_json}) and set(ids) <= {u["id"] for u in as_json}

    deleted = run("delete", *ids, "0" * 32)
    assert deleted.exit_code == 1
    assert deleted.stdout.splitlines() == [f"{upload_id}  deleted" for upload_id in ids]
    assert deleted.stderr.startswith(f"{'0' * 32}  not_found: ")
    assert all(left_behind(storage, entry["id"], f"originals/{entry['id']}.jpg") == [] for entry in uploaded)
    assert run("delete", ids[0]).exit_code == 0
    assert not set(ids) & {line.split()[0] for line in run("ls", "--limit", "50").stdout.splitlines()}
    assert run("status", ids[0], "--wait").stdout.strip() == f"{ids[0]}  deleted"
