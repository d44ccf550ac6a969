"""The row's record of its derivatives: one accessor names every object, old rows and new alike,
and the results give public URLs and sizes from it."""

import io
import json
from datetime import datetime, timezone

from PIL import Image

from imgpipe import uploads
from imgpipe.keys import content_version
from imgpipe.presets import BUILT_IN
from imgpipe.records import results_body
from processor.imaging import make_derivatives

UPLOAD_ID = "0123456789ab" + "c" * 20
NOW = datetime(2026, 12, 2, 4, 0, 0, tzinfo=timezone.utc)


class Store:
    """Presigns by naming the key, as imgpipe.storage.Storage would sign it."""

    public_url = "https://files.example.com/"
    bucket = "uploads"

    def presign_get(self, key, ttl, now, response_headers=None):
        return f"https://files.example.com/uploads/{key}?X-Amz-Signature=s"


def row(derivatives=None, status="completed", formats="jpeg,webp"):
    base = {name: None for name in uploads.COLUMNS}
    base.update(id=UPLOAD_ID, key=f"originals/{UPLOAD_ID}.png", status=status, formats=formats, filename="a.png",
                content_type="image/png", derivatives=None if derivatives is None else json.dumps(derivatives))
    return base


def entry(preset, fmt, content, width, height, size):
    return uploads.derivative_entry(BUILT_IN.get(preset).version(fmt), content, width, height, size)


def versioned():
    thumb, thumb_webp = content_version(b"thumbnail jpeg"), content_version(b"thumbnail webp")
    return {"thumbnail": {"jpeg": entry("thumbnail", "jpeg", thumb, 300, 200, 9000),
                          "webp": entry("thumbnail", "webp", thumb_webp, 300, 200, 7000)},
            "resized": {"jpeg": entry("resized", "jpeg", content_version(b"resized"), 1024, 683, 90000)}}


def test_a_versioned_record_names_each_object_by_its_content():
    record = versioned()
    objects = uploads.derivative_objects(row(record))
    assert list(objects) == ["thumbnail", "resized"]
    thumb = objects["thumbnail"]["webp"]
    assert thumb == uploads.DerivativeObject(
        f"thumbnails/{UPLOAD_ID}.{record['thumbnail']['webp']['content']}.webp", 300, 200, 7000)
    assert objects["resized"]["jpeg"].key == f"resized/{UPLOAD_ID}.{content_version(b'resized')}.jpg"
    assert uploads.stored_derivatives(row(record)) == {
        "thumbnail": {"jpeg": BUILT_IN.get("thumbnail").version("jpeg"), "webp": BUILT_IN.get("thumbnail").version("webp")},
        "resized": {"jpeg": BUILT_IN.get("resized").version("jpeg")}}
    assert len(uploads.derivative_keys(row(record))) == 3


def test_rows_stored_before_versioned_keys_keep_their_old_keys():
    old = {"thumbnail": {"jpeg": BUILT_IN.get("thumbnail").version("jpeg")}}
    assert uploads.derivative_objects(row(old)) == {
        "thumbnail": {"jpeg": uploads.DerivativeObject(f"thumbnails/{UPLOAD_ID}.jpg", None, None, None)}}
    # Completed before the record existed: the built-in three, in the upload's formats, at their old keys.
    keys = uploads.derivative_keys(row(None, formats="jpeg,webp"))
    assert sorted(keys) == sorted(f"{prefix}/{UPLOAD_ID}.{ext}" for prefix in ("resized", "compressed", "thumbnails")
                                  for ext in ("jpg", "webp"))
    assert uploads.derivative_objects(row(None, status="processing")) == {}
    # A record mixing both: one preset made again since, another untouched.
    mixed = {**old, "resized": versioned()["resized"]}
    assert {obj.key for obj in (by_format["jpeg"] for by_format in uploads.derivative_objects(row(mixed)).values())} \
        == {f"thumbnails/{UPLOAD_ID}.jpg", f"resized/{UPLOAD_ID}.{content_version(b'resized')}.jpg"}


def test_public_results_are_permanent_and_list_sizes():
    record = versioned()
    body = results_body(row(record), Store(), 3600, NOW, BUILT_IN, "public")
    key = f"thumbnails/{UPLOAD_ID}.{record['thumbnail']['webp']['content']}.webp"
    assert body["presets"]["thumbnail"]["webp"] == f"https://files.example.com/uploads/{key}"
    assert body["thumbnail"] == body["presets"]["thumbnail"]["jpeg"] and "Signature" not in body["thumbnail"]
    assert "X-Amz-Signature" in body["original"], "an original is never public"
    assert body["expires_at"] is None
    assert body["sizes"] == {"resized": {"width": 1024, "height": 683}, "thumbnail": {"width": 300, "height": 200}}


def test_private_results_are_presigned_and_list_sizes_too():
    body = results_body(row(versioned()), Store(), 3600, NOW, BUILT_IN)
    assert all("X-Amz-Signature" in url for url in body["presets"]["thumbnail"].values())
    assert body["expires_at"] == "2026-12-02T05:00:00.000000Z"
    assert body["sizes"]["thumbnail"] == {"width": 300, "height": 200}
    pending = results_body(row(None, status="pending"), Store(), 3600, NOW, BUILT_IN, "public")
    assert pending["presets"]["thumbnail"] == {"jpeg": None, "webp": None} and pending["expires_at"] is None
    assert pending["sizes"]["thumbnail"] == {"width": None, "height": None}


def test_the_derivation_reports_each_presets_size_as_encoded():
    source = io.BytesIO()
    Image.linear_gradient("L").resize((1600, 900)).convert("RGB").save(source, "JPEG")
    made = make_derivatives(source.getvalue(), max_pixels=10_000_000, formats=("jpeg", "webp"))
    assert made.sizes == {"resized": (1024, 576), "compressed": (1600, 900), "thumbnail": (300, 169)}
    for name, by_format in made.made.items():
        for encoded in by_format.values():
            assert Image.open(io.BytesIO(encoded)).size == made.sizes[name]
