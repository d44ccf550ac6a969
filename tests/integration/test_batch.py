"""POST /uploads/batch on the real stack: one entry per file, refusals in place, each good entry
a working upload exactly like one made by POST /uploads."""

from __future__ import annotations

from PIL import Image

from pipeline_client import put_file


def test_a_mixed_batch_answers_each_file_in_place(api, stack, tmp_path):
    Image.new("RGB", (400, 300), "teal").save(tmp_path / "one.jpg")
    Image.new("RGBA", (400, 300), (0, 128, 128, 128)).save(tmp_path / "two.png")
    files = [
        {"filename": "one.jpg", "content_type": "image/jpeg", "size": (tmp_path / "one.jpg").stat().st_size},
        {"filename": "notes.txt", "content_type": "text/plain", "size": 10},
        {"filename": "two.png", "content_type": "image/png", "formats": ["png", "webp"],
         "size": (tmp_path / "two.png").stat().st_size},
        {"filename": "hook.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": "http://10.0.0.1/hook"},
        {"filename": "big.jpg", "content_type": "image/jpeg", "size": stack.settings.max_upload_bytes + 1},
        {"content_type": "image/jpeg", "size": 10},
        {"filename": "three.jpg", "content_type": "image/jpeg", "size": 10, "formats": ["gif"]},
        {"filename": "four.jpg", "content_type": "image/jpeg"},
    ]
    response = api.post("/uploads/batch", json={"files": files})
    assert response.status_code == 201, response.text
    entries = response.json()["uploads"]

    refusals = [(entry["status"], entry["error"]["code"]) if "error" in entry else None for entry in entries]
    assert refusals == [None, (415, "unsupported_media_type"), None, (400, "callback_not_allowed"),
                        (400, "too_large"), (400, "invalid_request"), (400, "unsupported_output_format"),
                        (400, "invalid_request")]
    assert entries[7]["error"]["message"].startswith("size is required")
    single = api.post("/uploads", json=files[1])
    assert (single.status_code, single.json()["error"]) == (415, entries[1]["error"]), "the same refusal as alone"

    one, two = entries[0], entries[2]
    assert one["id"] != two["id"]
    assert set(one) == set(api.create()) == {"id", "status", "key", "upload"}
    assert one["key"] == f"originals/{one['id']}.jpg" and two["key"] == f"originals/{two['id']}.png"
    put_file(one["upload"], tmp_path / "one.jpg")
    put_file(two["upload"], tmp_path / "two.png")
    assert api.wait_final(one["id"])["status"] == "completed"
    assert api.wait_final(two["id"])["status"] == "completed"
    assert list(api.get(f"/uploads/{two['id']}/results").json()["formats"]) == ["png", "webp"]


def test_a_batch_over_the_limit_or_without_files_is_refused_whole(api, stack):
    too_many = [{"filename": "a.jpg", "content_type": "image/jpeg"}] * (stack.settings.max_batch + 1)
    response = api.post("/uploads/batch/", json={"files": too_many})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "too_many_files")
    for body in ({"files": []}, {"files": [1]}, {"files": "a.jpg"}, [{"filename": "a.jpg"}]):
        response = api.post("/uploads/batch", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request"), body


def test_the_trailing_slash_answers_too(api):
    response = api.post("/uploads/batch/",
                        json={"files": [{"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}]})
    assert response.status_code == 201
    assert response.json()["uploads"][0]["status"] == "pending"
