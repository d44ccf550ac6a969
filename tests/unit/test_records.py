"""The documents describing an upload, built from a row: the same for the API and the webhook."""

from datetime import datetime, timezone

import json

from imgpipe import uploads
from imgpipe.presets import BUILT_IN, parse_presets
from imgpipe.records import attachment, record_body, results_body, summary_body

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
UPLOAD_ID = "e" * 32


class KeyPresigner:
    """Presigns by naming the key: enough to see which objects a document points at."""

    def presign_get(self, key, ttl, now, response_headers=None):
        answered_with = "".join(f"&{name}={value}" for name, value in (response_headers or {}).items())
        return f"https://files.example.com/{key}?ttl={ttl}{answered_with}"


def row(**changes):
    base = {name: None for name in uploads.COLUMNS}
    base.update(id=UPLOAD_ID, key=f"originals/{UPLOAD_ID}.png", status="completed", filename="a.png",
                content_type="image/png", created_at="2026-01-02T03:00:00.000000Z",
                updated_at="2026-01-02T03:00:01.000000Z", formats="jpeg")
    base.update(changes)
    return base


def test_jpeg_results_are_the_top_level_urls_as_before():
    body = results_body(row(), KeyPresigner(), 60, NOW, BUILT_IN)
    assert body["thumbnail"] == f"https://files.example.com/thumbnails/{UPLOAD_ID}.jpg?ttl=60"
    assert body["original"].startswith(f"https://files.example.com/originals/{UPLOAD_ID}.png?ttl=60&")
    assert body["formats"] == {"jpeg": {kind: body[kind] for kind in ("resized", "compressed", "thumbnail")}}
    assert body["expires_at"] == "2026-01-02T03:05:05.000000Z"


def test_other_formats_are_listed_per_format_and_jpeg_urls_are_null_without_jpeg():
    body = results_body(row(formats="png,webp"), KeyPresigner(), 60, NOW, BUILT_IN)
    assert (body["resized"], body["compressed"], body["thumbnail"]) == (None, None, None)
    assert list(body["formats"]) == ["png", "webp"]
    assert body["formats"]["webp"]["compressed"] == f"https://files.example.com/compressed/{UPLOAD_ID}.webp?ttl=60"


def test_nothing_is_presigned_before_completion():
    body = results_body(row(status="processing", formats="jpeg,avif"), KeyPresigner(), 60, NOW, BUILT_IN)
    assert body["original"] is None and body["expires_at"] is None
    assert body["formats"] == {name: dict.fromkeys(("resized", "compressed", "thumbnail")) for name in ("jpeg", "avif")}


def test_the_record_shows_the_callback_and_every_try():
    deliveries = [{"attempted_at": "2026-01-02T03:04:00.000000Z", "http_status": 503, "error": "http_status"}]
    body = record_body(row(callback_url="https://hooks.example.com/in", callback_state="pending"),
                       KeyPresigner(), 60, NOW, deliveries, BUILT_IN)
    assert body["callback"] == {"url": "https://hooks.example.com/in", "state": "pending", "attempts": [
        {"at": "2026-01-02T03:04:00.000000Z", "http_status": 503, "error": "http_status"}]}
    assert record_body(row(), KeyPresigner(), 60, NOW, [], BUILT_IN)["callback"] is None


SQUARE_AND_THUMBNAIL = parse_presets("""
[presets.square]
box = [400, 400]
mode = "cover"
formats = ["webp"]

[presets.thumbnail]
box = [200, 200]
""")


def test_every_preset_is_listed_per_format_and_per_preset():
    stored = SQUARE_AND_THUMBNAIL.versions(None, ("jpeg", "avif"))
    body = results_body(row(formats="jpeg,avif", derivatives=json.dumps(stored)), KeyPresigner(), 60, NOW,
                        SQUARE_AND_THUMBNAIL)
    assert body["presets"] == {
        "square": {"webp": f"https://files.example.com/square/{UPLOAD_ID}.webp?ttl=60"},
        "thumbnail": {"jpeg": f"https://files.example.com/thumbnails/{UPLOAD_ID}.jpg?ttl=60",
                      "avif": f"https://files.example.com/thumbnails/{UPLOAD_ID}.avif?ttl=60"},
    }
    assert body["formats"] == {"jpeg": {"thumbnail": body["presets"]["thumbnail"]["jpeg"]},
                               "webp": {"square": body["presets"]["square"]["webp"]},
                               "avif": {"thumbnail": body["presets"]["thumbnail"]["avif"]}}
    assert (body["resized"], body["compressed"]) == (None, None)
    assert body["thumbnail"] == body["presets"]["thumbnail"]["jpeg"]


def test_a_completed_upload_lists_what_it_has_of_the_presets_in_use():
    """Objects of a preset gone from the file are not listed; nor is a new preset not made yet."""
    stored = BUILT_IN.versions(None, ("jpeg",))
    body = results_body(row(derivatives=json.dumps(stored)), KeyPresigner(), 60, NOW, SQUARE_AND_THUMBNAIL)
    assert list(body["presets"]) == ["thumbnail"]


def test_uploads_completed_before_presets_list_the_built_in_three():
    body = results_body(row(formats="jpeg,webp"), KeyPresigner(), 60, NOW, BUILT_IN)
    assert list(body["presets"]) == ["resized", "compressed", "thumbnail"]
    assert all(list(urls) == ["jpeg", "webp"] for urls in body["presets"].values())


def test_an_upload_that_named_presets_lists_only_those():
    body = results_body(row(status="pending", presets="thumbnail"), KeyPresigner(), 60, NOW, SQUARE_AND_THUMBNAIL)
    assert body["presets"] == {"thumbnail": {"jpeg": None}}


def test_the_record_carries_the_placeholder_and_dominant_colour():
    body = record_body(row(blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj", dominant_color="#336699"), KeyPresigner(), 60,
                       NOW, [], BUILT_IN)
    assert (body["image"]["blurhash"], body["image"]["dominant_color"]) == ("LEHV6nWB2yk8pyo0adR*.7kCMdnj", "#336699")


def test_the_original_is_asked_for_as_an_attachment_of_its_declared_type():
    body = results_body(row(filename="holiday.png"), KeyPresigner(), 60, NOW, BUILT_IN)
    assert body["original"] == (f"https://files.example.com/originals/{UPLOAD_ID}.png?ttl=60&Content-Type=image/png"
                                "&Content-Disposition=attachment; filename=\"holiday.png\"; filename*=UTF-8''holiday.png")
    assert "Content-Disposition" not in body["thumbnail"]


def test_an_attachment_keeps_any_name_in_utf8_and_a_safe_ascii_fallback():
    assert attachment('Ünïcode "quoted" \\ name.jpg') == (
        'attachment; filename="_n_code _quoted_ _ name.jpg"; '
        "filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22quoted%22%20%5C%20name.jpg")


def test_a_deleted_upload_keeps_its_facts_and_points_at_nothing():
    deleted = row(status="deleted", formats="jpeg,webp", width=640, height=480, format="JPEG", bytes=1234,
                  deleted_at="2026-01-02T03:04:00.000000Z", updated_at="2026-01-02T03:04:00.000000Z")
    body = record_body(deleted, KeyPresigner(), 60, NOW, [], BUILT_IN)
    assert (body["status"], body["deleted_at"]) == ("deleted", "2026-01-02T03:04:00.000000Z")
    assert body["image"] == {"width": 640, "height": 480, "format": "JPEG", "bytes": 1234, "blurhash": None,
                             "dominant_color": None}
    results = body["results"]
    assert [results[kind] for kind in ("original", "resized", "compressed", "thumbnail", "expires_at")] == [None] * 5
    assert all(url is None for urls in results["formats"].values() for url in urls.values())


def test_a_listed_upload_is_the_record_without_its_callback():
    hooked = row(callback_url="https://hooks.example.com/in", callback_state="delivered")
    assert summary_body(hooked, KeyPresigner(), 60, NOW, BUILT_IN) == {
        name: value for name, value in record_body(hooked, KeyPresigner(), 60, NOW, [], BUILT_IN).items()
        if name != "callback"}
