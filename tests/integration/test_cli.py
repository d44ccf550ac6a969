"""The imgpipe CLI against the real stack: upload, status and results, as a user runs them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from cli import client
from cli.main import cli
from imgpipe import uploads
from imgpipe.engines import split_url


@pytest.fixture
def run(stack):
    def invoke(*args: str, **env: str):
        result = CliRunner().invoke(cli, list(args), env={"IMGPIPE_API": stack.api_url,
                                                        "IMGPIPE_API_TOKEN": stack.settings.api_token, **env})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result
    return invoke


def gradient(path, size, image_format):
    Image.radial_gradient("L").resize(size).convert("RGB").save(path, image_format)
    return path


def test_two_files_upload_concurrently_and_download_all_versions(run, tmp_path):
    landscape = gradient(tmp_path / "landscape.jpg", (1600, 1200), "JPEG")
    portrait = gradient(tmp_path / "portrait.png", (600, 1200), "PNG")
    out = tmp_path / "out"

    result = run("upload", "--jobs", "2", "--json", "--download", str(out), str(landscape), str(portrait))

    assert result.exit_code == 0, result.output
    uploads = json.loads(result.stdout)["uploads"]
    assert [entry["file"] for entry in uploads] == [str(landscape), str(portrait)]
    assert [entry["content_type"] for entry in uploads] == ["image/jpeg", "image/png"]
    expected_sizes = {
        str(landscape): {"resized": (1024, 768), "compressed": (1600, 1200), "thumbnail": (300, 225)},
        str(portrait): {"resized": (512, 1024), "compressed": (600, 1200), "thumbnail": (150, 300)},
    }
    for entry in uploads:
        assert (entry["status"], entry["error"], entry["uploaded"]) == ("completed", None, True)
        assert len(entry["id"]) == 32
        assert set(entry["results"]) == {"original", "resized", "compressed", "thumbnail", "expires_at"}
        saved = entry["downloaded"]
        assert saved["original"].startswith(str(out / entry["id"]))
        with open(saved["original"], "rb") as original, open(entry["file"], "rb") as source:
            assert original.read() == source.read()
        for version, size in expected_sizes[entry["file"]].items():
            with Image.open(saved[version]) as image:
                assert (image.format, image.size) == ("JPEG", size), version
    assert result.stderr.count("uploaded") == 2


def test_a_file_that_is_no_image_fails_with_its_code(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a picture at all\n" * 10)

    result = run("upload", str(notes), str(fake))

    assert result.exit_code == 1
    refused, failed = result.stdout.splitlines()
    assert refused.startswith("notes.txt  -  rejected  unsupported_media_type: 'text/plain' is not an accepted")
    name, upload_id, status, reason = failed.split("  ", 3)
    assert (name, len(upload_id), status) == ("holiday.jpg", 32, "failed")
    assert reason.startswith("not_an_image: ")


def test_upload_prints_one_short_line_per_file_and_the_urls_when_asked(run, tmp_path):
    photo = gradient(tmp_path / "photo.jpg", (800, 600), "JPEG")

    plain = run("upload", str(photo))
    assert plain.exit_code == 0, plain.output
    [line] = plain.stdout.splitlines()
    name, upload_id, status, where = line.split("  ")
    assert (name, len(upload_id), status, where) == ("photo.jpg", 32, "completed", f"stored as originals/{upload_id}.jpg")
    assert "http" not in plain.stdout

    saved = run("upload", "--download", str(tmp_path / "out"), str(photo))
    [line] = saved.stdout.splitlines()
    assert line.endswith(f"saved in {tmp_path / 'out' / line.split('  ')[1]}")

    with_urls = run("upload", "--urls", str(photo))
    first, *urls = with_urls.stdout.splitlines()
    assert first.split("  ")[2] == "completed"
    assert [url.split()[0] for url in urls] == ["original", "resized", "compressed", "thumbnail"]
    assert all(url.split()[1].startswith("http") for url in urls)


def test_version_is_the_package_s(run):
    from imgpipe.version import VERSION

    result = run("--version")
    assert result.stdout.strip() == f"imgpipe, version {VERSION}"


def test_no_wait_then_status_and_results(run, tmp_path):
    photo = gradient(tmp_path / "photo.jpg", (800, 600), "JPEG")

    uploaded = run("upload", "--no-wait", "--json", str(photo))
    assert uploaded.exit_code == 0, uploaded.output
    upload_id = json.loads(uploaded.stdout)["uploads"][0]["id"]

    waited = run("status", upload_id, "--wait")
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.strip() == f"{upload_id}  completed"

    status = run("status", upload_id, "--json")
    assert json.loads(status.stdout)["status"] == "completed"

    results = run("results", upload_id, "--download", str(tmp_path / "out"))
    assert results.exit_code == 0, results.output
    lines = dict(line.split(None, 1) for line in results.stdout.splitlines() if not line.startswith("saved"))
    assert set(lines) == {"original", "resized", "compressed", "thumbnail", "expires_at"}
    with Image.open(tmp_path / "out" / upload_id / "thumbnail.jpg") as thumbnail:
        assert thumbnail.size == (300, 225)

    as_json = json.loads(run("results", upload_id, "--json").stdout)
    assert as_json["thumbnail"].startswith("http")


def test_an_unknown_id_is_an_error(run):
    result = run("status", "0" * 32)
    assert result.exit_code == 1
    assert "not_found" in result.stderr


def test_an_unreachable_api_says_so(run, tmp_path):
    photo = gradient(tmp_path / "photo.jpg", (64, 64), "JPEG")
    result = run("upload", "--api", "http://127.0.0.1:9", str(photo))
    assert result.exit_code == 1
    assert "api_unreachable: cannot reach the API at http://127.0.0.1:9" in result.stdout


def test_a_batch_bigger_than_the_server_takes_is_split_until_it_fits(stack, monkeypatch):
    count = stack.settings.max_batch + 10
    monkeypatch.setattr(client, "BATCH_SIZE", count)
    bodies = [{"filename": f"{index}.jpg", "content_type": "image/jpeg", "size": 10} for index in range(count)]
    bodies[3]["content_type"] = "text/plain"

    created = client.Api(stack.api_url, token=stack.settings.api_token).create_many(bodies)

    assert len(created) == count
    assert isinstance(created[3], client.ClientError) and created[3].code == "unsupported_media_type"
    ids = {entry["id"] for index, entry in enumerate(created) if index != 3}
    assert len(ids) == count - 1


def test_setup_migrates_a_new_database_once_and_processes_refuse_it_before(stack, databases, tmp_path):
    engine, _ = split_url(stack.settings.database)
    fresh = databases.url(engine) or f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**stack.settings.to_env(), "DATABASE_URL": fresh}

    refused = CliRunner().invoke(cli, ["worker", "--burst"], env=env)
    assert refused.exit_code == 1
    assert f"the {engine} database is at schema version 0" in refused.output
    assert "run `imgpipe setup`" in refused.output

    first = CliRunner().invoke(cli, ["setup"], env=env)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        *(f"Database ({engine}): applied migration {m.version}, {m.description}." for m in uploads.MIGRATIONS),
        "Bucket and notification already configured.", "Store identities already configured."]
    again = CliRunner().invoke(cli, ["setup"], env=env)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == [
        f"Database ({engine}) already at schema version {uploads.MIGRATIONS[-1].version}.",
        "Bucket and notification already configured.", "Store identities already configured."]
    database = uploads.connect(fresh)
    uploads.require_schema(database)
    database.close()
