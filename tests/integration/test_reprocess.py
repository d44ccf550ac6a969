"""Presets and `imgpipe reprocess` against the real stack: stored uploads re-made after the presets
change, stopped with Ctrl-C and resumed, selected by preset, date and status, then pruned.

The stack is this module's own: the tests change its presets and restart its workers.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image
from rq.registry import StartedJobRegistry

from cli.main import cli
from cli.stack import PROJECT_ROOT
from imgpipe import uploads
from imgpipe.keys import derivative_key_prefix
from imgpipe.queues import make_reprocess_queue
from imgpipe.redis_connection import redis_client
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api, fetched_image, make_jpegs, put_file, upload_all
from polling import eventually
from stacks import running_stack

UPLOADS = 30
SIZE = (1600, 1200)
MAX_PIXELS = 2_500_000  # low enough to refuse one upload
NEW_PRESETS = """
[presets.resized]
box = [1024, 1024]

[presets.compressed]

[presets.thumbnail]
box = [200, 200]

[presets.square]
box = [256, 256]
mode = "cover"
crop = "entropy"

[presets.preview]
box = [640, 640]
formats = ["webp"]
"""
CHANGED_SQUARE = NEW_PRESETS.replace("box = [256, 256]", "box = [300, 300]")
PRUNED_PRESETS = """
[presets.resized]
box = [1024, 1024]

[presets.thumbnail]
box = [200, 200]

[presets.square]
box = [300, 300]
mode = "cover"
crop = "entropy"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("reprocess-stack"), max_pixels=MAX_PIXELS) as running:
        yield running


@pytest.fixture(scope="module")
def stored(stack, tmp_path_factory):
    """UPLOADS photos completed under the built-in presets, and one upload too big for the limit."""
    api = Api.of(stack)
    created = upload_all(api, make_jpegs(tmp_path_factory.mktemp("photos"), UPLOADS, size=SIZE))
    big = tmp_path_factory.mktemp("big") / "big.jpg"
    Image.linear_gradient("L").resize((2000, 1500)).convert("RGB").save(big)
    too_big = api.create_for(big)
    put_file(too_big["upload"], big)
    for upload in [*created, too_big]:
        api.wait_final(upload["id"], timeout=60)
    return [upload["id"] for upload in created], too_big["id"]


def use_settings(stack, **changes) -> None:
    """Restart the API and the worker with changed settings, as an operator would: the API
    first, for a worker refuses to start with presets other than the API's."""
    stack.settings = dataclasses.replace(stack.settings, **changes)
    for name, start in (("api", stack.start_api), ("worker", stack.start_worker)):
        stack.stop_process(name)
        start()


def presets_file(tmp_path, text: str):
    path = tmp_path / "presets.toml"
    path.write_text(text)
    return str(path)


def reprocess(stack, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "reprocess", *args], cwd=PROJECT_ROOT,
                            env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout + stderr


def rows(stack) -> dict[str, dict]:
    database = uploads.connect(stack.settings.database)
    return {row["id"]: row for row in database.query("SELECT * FROM uploads")}


def current(stack, ids, preset: str) -> int:
    """How many of the uploads have `preset`'s objects recorded."""
    table = rows(stack)
    return sum(1 for upload_id in ids if preset in json.loads(table[upload_id]["derivatives"] or "{}"))


def wait_for_queue_to_settle(stack, timeout: float = 30) -> None:
    """Until the reprocess queue has nothing waiting or running (a job running at Ctrl-C ends on its own)."""
    queue = make_reprocess_queue(redis_client(stack.settings, "cli"), stack.settings)
    eventually(lambda: not (queue.count or StartedJobRegistry(queue=queue).count), timeout, "the reprocess jobs to end")


def listed(storage: Storage, upload_id: str, preset: str) -> list[str]:
    """The keys the bucket holds of the upload's objects of `preset`, whatever their version."""
    return [key for key, _ in storage.list_after(derivative_key_prefix(preset, upload_id), "")]


def recorded(stack, upload_id: str, preset: str, fmt: str = "jpeg") -> str | None:
    """The key the upload's row names for the preset's object in `fmt`, None when it names none."""
    obj = uploads.derivative_objects(rows(stack)[upload_id]).get(preset, {}).get(fmt)
    return obj.key if obj else None


def test_completed_uploads_carry_a_placeholder_and_the_built_in_presets(stack, stored):
    ids, too_big = stored
    record = Api.of(stack).get(f"/uploads/{ids[0]}").json()
    assert record["status"] == "completed"
    assert len(record["image"]["blurhash"]) == 28 and record["image"]["dominant_color"].startswith("#")
    assert list(record["results"]["presets"]) == ["resized", "compressed", "thumbnail"]
    assert Api.of(stack).get(f"/uploads/{too_big}/status").json()["error"]["code"] == "too_many_pixels"


def test_reprocess_stopped_with_ctrl_c_resumes_where_it_stopped(stack, stored, tmp_path):
    ids, _ = stored
    use_settings(stack, presets=presets_file(tmp_path, NEW_PRESETS))
    heading = f"presets {stack.settings.derivative_presets.version} ({stack.settings.presets}):"
    assert finished(reprocess(stack, "--dry-run")) == (0, f"{heading} {UPLOADS} upload(s) to reprocess\n")

    first = reprocess(stack)

    def three_made() -> bool:
        assert first.poll() is None, finished(first)
        return current(stack, ids, "square") >= 3

    eventually(three_made, 60, "three uploads re-made before Ctrl-C", interval=0.02)
    first.send_signal(signal.SIGINT)
    code, output = finished(first)
    assert code == 130, output
    assert "Stopped after" in output and "Run the same command again to go on." in output
    wait_for_queue_to_settle(stack)
    done = current(stack, ids, "square")
    assert 3 <= done < UPLOADS

    second = reprocess(stack)
    code, output = finished(second)
    assert code == 0, output
    assert f": {UPLOADS - done} upload(s) to reprocess" in output
    assert f"Done: {UPLOADS - done} remade." in output
    assert current(stack, ids, "square") == UPLOADS

    assert finished(reprocess(stack)) == (0, f"{heading} 0 upload(s) to reprocess\n")

    storage = Storage(stack.settings, ROOT)
    for upload_id in ids[:3] + ids[-3:]:
        results = Api.of(stack).get(f"/uploads/{upload_id}/results").json()
        assert list(results["presets"]) == ["resized", "compressed", "thumbnail", "square", "preview"]
        assert fetched_image(results["thumbnail"]).size == (200, 150)
        assert fetched_image(results["presets"]["square"]["jpeg"]).size == (256, 256)
        preview = fetched_image(results["presets"]["preview"]["webp"])
        assert (preview.format, preview.size) == ("WEBP", (640, 480))
        assert list(results["presets"]["preview"]) == ["webp"]
        assert [key.rsplit(".", 1)[1] for key in listed(storage, upload_id, "preview")] == ["webp"]

    downloaded = CliRunner().invoke(cli, ["results", ids[0], "--download", str(tmp_path / "out")],
                                    env={"IMGPIPE_API": stack.api_url, "IMGPIPE_API_TOKEN": stack.settings.api_token})
    assert downloaded.exit_code == 0, downloaded.output
    assert sorted(path.name for path in (tmp_path / "out" / ids[0]).iterdir()) == [
        "compressed.jpg", "original.jpg", "preview.webp", "resized.jpg", "square.jpg", "thumbnail.jpg"]


def test_one_preset_can_be_made_again_alone_and_dates_select(stack, stored, tmp_path):
    ids, _ = stored
    use_settings(stack, presets=presets_file(tmp_path, CHANGED_SQUARE))
    before = rows(stack)
    later = reprocess(stack, "--preset", "square", "--since", "2999-01-01")
    assert finished(later)[1].endswith(" 0 upload(s) to reprocess\n")

    code, output = finished(reprocess(stack, "--preset", "square", "--jobs", "2"))
    assert code == 0, output
    after = rows(stack)
    for upload_id in ids:
        old, new = json.loads(before[upload_id]["derivatives"]), json.loads(after[upload_id]["derivatives"])
        assert new["square"] != old["square"]
        assert {name: versions for name, versions in new.items() if name != "square"} == \
               {name: versions for name, versions in old.items() if name != "square"}
    results = Api.of(stack).get(f"/uploads/{ids[0]}/results").json()
    assert fetched_image(results["presets"]["square"]["jpeg"]).size == (300, 300)


def test_deleting_an_upload_removes_every_presets_objects(stack, tmp_path):
    api = Api.of(stack)
    [created] = upload_all(api, make_jpegs(tmp_path, 1, size=SIZE))
    assert api.wait_final(created["id"])["status"] == "completed"
    storage = Storage(stack.settings, ROOT)
    made = [recorded(stack, created["id"], name, fmt) for name, fmt in (("square", "jpeg"), ("preview", "webp"),
                                                                        ("thumbnail", "jpeg"))]
    assert all(storage.size_of(key) for key in made)
    assert api.delete(created["id"]).json()["status"] == "deleted"
    assert [key for name in ("square", "preview", "thumbnail", "resized", "compressed")
            for key in listed(storage, created["id"], name)] == []


def test_an_upload_that_failed_internal_completes_when_tried_again(stack, stored):
    """A refused upload's original is gone and it is passed over; one whose attempts ran out (as
    if a bug since fixed had made every attempt crash) is made from its original and completes."""
    ids, too_big = stored
    database = uploads.connect(stack.settings.database)
    database.execute("UPDATE uploads SET status = 'failed', error_code = 'internal', error_message = 'crashed'"
                     " WHERE id = ?", [ids[0]])
    database.close()
    code, output = finished(reprocess(stack, "--status", "failed"))
    assert code == 0, output
    assert ": 1 upload(s) to reprocess" in output and "Done: 1 completed." in output
    record = Api.of(stack).get(f"/uploads/{ids[0]}").json()
    assert (record["status"], record["error"], record["image"]["width"]) == ("completed", None, SIZE[0])
    assert fetched_image(record["results"]["presets"]["preview"]["webp"]).size == (640, 480)
    assert Api.of(stack).get(f"/uploads/{too_big}/status").json()["status"] == "failed"


def test_prune_removes_the_objects_of_presets_no_longer_in_use(stack, stored, tmp_path):
    ids, _ = stored
    storage = Storage(stack.settings, ROOT)
    assert storage.size_of(recorded(stack, ids[0], "compressed")) > 0
    use_settings(stack, presets=presets_file(tmp_path, PRUNED_PRESETS))
    kept = reprocess(stack)
    code, output = finished(kept)
    assert code == 0 and ": 0 upload(s) to reprocess" in output, output
    assert storage.size_of(recorded(stack, ids[0], "compressed")) > 0, "without --prune nothing is deleted"

    code, output = finished(reprocess(stack, "--prune", "--jobs", "2"))
    assert code == 0, output
    assert f"Done: {UPLOADS} pruned." in output
    database = uploads.connect(stack.settings.database)
    for upload_id in ids:
        # What is left under the pruned prefixes is what an earlier reprocess superseded, kept for its
        # URLs until the grace ends (test_public_derivatives releases it).
        superseded = set(uploads.superseded_keys(database, upload_id))
        assert set(listed(storage, upload_id, "compressed") + listed(storage, upload_id, "preview")) <= superseded
        assert recorded(stack, upload_id, "compressed") is None
        assert storage.size_of(recorded(stack, upload_id, "thumbnail")) > 0
    results = Api.of(stack).get(f"/uploads/{ids[0]}/results").json()
    assert (list(results["presets"]), results["compressed"]) == (["resized", "thumbnail", "square"], None)
    assert finished(reprocess(stack, "--prune"))[1].endswith(" 0 upload(s) to reprocess\n")


def test_workers_with_other_presets_refuse_the_jobs(stack, stored, tmp_path):
    stack.settings = dataclasses.replace(stack.settings, presets=presets_file(tmp_path, NEW_PRESETS))
    code, output = finished(reprocess(stack))  # the workers still run PRUNED_PRESETS
    assert code == 1
    assert "the workers run other presets" in output
