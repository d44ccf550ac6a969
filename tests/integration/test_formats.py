"""Output formats through the real stack: every format's derivatives open at the right size,
PNG keeps transparency, and an upload that asks for nothing but JPEG is what it always was."""

from __future__ import annotations

import re

from PIL import Image

from imgpipe.formats import writable_formats
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from pipeline_client import fetched_image, put_file
from stored_objects import objects_of

SIZES = {"resized": (1024, 768), "compressed": (1600, 1200), "thumbnail": (300, 225)}
FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}


def transparent_corner_png(path):
    image = Image.new("RGBA", (1600, 1200), (30, 120, 200, 255))
    image.paste((0, 0, 0, 0), (0, 0, 400, 300))
    image.save(path)
    return path


def test_every_format_asked_for_is_made_and_png_keeps_the_transparent_corner(api, tmp_path):
    formats = list(writable_formats())
    logo = transparent_corner_png(tmp_path / "logo.png")
    created = api.create_for(logo, "image/png", formats=list(reversed(formats)))
    put_file(created["upload"], logo)
    assert api.wait_final(created["id"], timeout=60)["status"] == "completed"

    results = api.get(f"/uploads/{created['id']}/results").json()
    assert list(results["formats"]) == formats
    assert {kind: results[kind] for kind in SIZES} == results["formats"]["jpeg"]
    for name, urls in results["formats"].items():
        for kind, size in SIZES.items():
            image = fetched_image(urls[kind])
            assert (image.format, image.size) == (FORMAT_NAMES[name], size), (name, kind)
            corner, middle = (size[0] // 10, size[1] // 10), (size[0] // 2, size[1] // 2)
            if name == "jpeg":
                assert image.getpixel(corner) == (255, 255, 255), "JPEG flattens on white"
            else:
                assert image.mode == "RGBA", (name, kind)
                assert image.getpixel(corner)[3] == 0, (name, kind)
                assert image.getpixel(middle)[3] == 255, (name, kind)
            if name == "png":
                assert image.getpixel(middle) == (30, 120, 200, 255), "PNG is lossless"


def test_without_jpeg_the_jpeg_urls_are_null_and_no_jpeg_is_written(api, stack, tmp_path):
    Image.linear_gradient("L").resize((800, 600)).convert("RGB").save(tmp_path / "photo.jpg")
    created = api.create_for(tmp_path / "photo.jpg", formats=["webp"])
    put_file(created["upload"], tmp_path / "photo.jpg")
    assert api.wait_final(created["id"])["status"] == "completed"

    results = api.get(f"/uploads/{created['id']}/results").json()
    assert (results["resized"], results["compressed"], results["thumbnail"]) == (None, None, None)
    assert fetched_image(results["formats"]["webp"]["thumbnail"]).size == (300, 225)
    storage = Storage(stack.settings, ROOT)
    derivatives = [key for key in objects_of(storage, created["id"], created["key"]) if key != created["key"]]
    assert len(derivatives) == 3 and all(key.endswith(".webp") for key in derivatives)


def test_a_jpeg_only_upload_is_unchanged(api, stack, tmp_path):
    Image.linear_gradient("L").resize((800, 600)).convert("RGB").save(tmp_path / "photo.jpg")
    created = api.create_for(tmp_path / "photo.jpg")
    put_file(created["upload"], tmp_path / "photo.jpg")
    assert api.wait_final(created["id"])["status"] == "completed"

    results = api.get(f"/uploads/{created['id']}/results").json()
    assert list(results) == ["id", "status", "original", "resized", "compressed", "thumbnail", "formats", "presets",
                            "sizes", "expires_at"]
    assert results["formats"] == {"jpeg": {kind: results[kind] for kind in SIZES}}
    assert re.search(rf"/thumbnails/{created['id']}\.[0-9a-f]{{16}}\.jpg$", results["thumbnail"].split("?")[0])
    assert fetched_image(results["compressed"]).format == "JPEG"
    storage = Storage(stack.settings, ROOT)
    derivatives = [key for key in objects_of(storage, created["id"], created["key"]) if key != created["key"]]
    assert len(derivatives) == 3 and all(key.endswith(".jpg") for key in derivatives)


def test_formats_the_server_cannot_write_are_refused(api):
    for formats in (["gif"], ["jpeg", "heic"], ["WEBP"]):
        response = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10,
                                              "formats": formats})
        assert (response.status_code, response.json()["error"]["code"]) == (400, "unsupported_output_format")
    response = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": []})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
