"""Moderation without services: the picture the model is given, the real model shipped in its
package on pictures made here, the settings, the row's columns and the record."""

from __future__ import annotations

import importlib.metadata
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from imagegen import encode, photo_like
from imgpipe import uploads
from imgpipe.presets import BUILT_IN
from imgpipe.records import record_body
from imgpipe.settings import Settings
from processor.imaging import make_derivatives
from processor.moderation import MODEL_PACKAGE, load_moderator, model_picture

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def thumbnails(**colours) -> dict[str, dict[str, bytes]]:
    """Derivatives as Derivatives.by_format() gives them: one flat thumbnail per format."""
    made = {}
    for output_format, colour in colours.items():
        pillow_format = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[output_format]
        made[output_format] = {"thumbnail": encode(Image.new("RGB", (30, 20), colour), pillow_format, quality=95)}
    return made


def near(pixel, colour, tolerance=8) -> bool:
    return all(abs(got - want) <= tolerance for got, want in zip(pixel, colour))


def test_the_jpeg_thumbnail_is_the_one_scored():
    picture = model_picture(thumbnails(png=GREEN, jpeg=RED, webp=BLUE))
    assert (picture.mode, picture.size) == ("RGB", (30, 20))
    assert near(picture.getpixel((10, 10)), RED)


def test_without_jpeg_the_lossless_thumbnail_is_scored():
    assert near(model_picture(thumbnails(webp=BLUE, png=GREEN)).getpixel((10, 10)), GREEN)
    assert near(model_picture(thumbnails(webp=BLUE)).getpixel((10, 10)), BLUE)


def test_transparency_is_flattened_on_white_as_in_the_jpeg_derivatives():
    half = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    half.paste(Image.new("RGBA", (20, 20), (*BLUE, 255)), (0, 0))
    picture = model_picture({"png": {"thumbnail": encode(half, "PNG")}})
    assert picture.mode == "RGB"
    assert picture.getpixel((5, 5)) == BLUE
    assert picture.getpixel((35, 5)) == (255, 255, 255)


def test_off_loads_nothing():
    assert load_moderator(Settings()) is None


@pytest.fixture(scope="module")
def moderator():
    return load_moderator(Settings(moderation="flag"))


def derivatives_of(picture: Image.Image, formats=("jpeg",)) -> dict[str, dict[str, bytes]]:
    return make_derivatives(encode(picture, "JPEG", quality=90), max_pixels=Settings().max_pixels,
                            formats=formats).by_format()


def test_a_plain_photo_like_picture_scores_low(moderator):
    verdict = moderator.judge(derivatives_of(photo_like(1224, 816, seed=0)))
    assert 0 <= verdict.score < 0.1
    assert not verdict.flagged
    assert verdict.threshold == 0.8
    assert (verdict.model, verdict.model_version) == (MODEL_PACKAGE, importlib.metadata.version(MODEL_PACKAGE))
    assert not moderator.rejects


def test_the_score_depends_on_the_picture(moderator):
    """A smooth radial blob is what this model is least sure about; a busy picture is not it."""
    photo = moderator.judge(derivatives_of(photo_like(1224, 816, seed=0))).score
    blob = moderator.judge(derivatives_of(Image.radial_gradient("L").resize((800, 600)).convert("RGB"))).score
    assert blob > photo + 0.3


def test_one_picture_scores_the_same_every_time_and_with_every_load(moderator):
    made = derivatives_of(photo_like(900, 600, seed=5))
    again = load_moderator(Settings(moderation="reject"))
    scores = {moderator.judge(made).score, moderator.judge(made).score, again.judge(made).score}
    assert len(scores) == 1
    assert again.rejects


def test_the_thumbnail_in_another_format_scores_alike(moderator):
    picture = photo_like(900, 600, seed=6)
    jpeg = moderator.judge(derivatives_of(picture)).score
    png = moderator.judge(derivatives_of(picture, formats=("png",))).score
    assert abs(jpeg - png) < 0.02


def test_threshold_zero_flags_everything():
    strict = load_moderator(Settings(moderation="flag", moderation_threshold=0))
    assert strict.judge(derivatives_of(photo_like(600, 400, seed=1))).flagged


def test_the_settings_are_read_and_checked():
    settings = Settings.from_env({"IMGPIPE_MODERATION": "reject", "IMGPIPE_MODERATION_THRESHOLD": "0.25"})
    assert (settings.moderation, settings.moderation_threshold) == ("reject", 0.25)
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings().moderation == "off"
    with pytest.raises(ValueError, match="IMGPIPE_MODERATION must be one of off, flag, reject"):
        Settings.from_env({"IMGPIPE_MODERATION": "on"})
    for bad in ("-0.1", "1.5"):
        with pytest.raises(ValueError, match="IMGPIPE_MODERATION_THRESHOLD"):
            Settings.from_env({"IMGPIPE_MODERATION_THRESHOLD": bad})


@pytest.fixture
def database(tmp_path):
    database = uploads.connect(str(tmp_path / "imgpipe.db"))
    uploads.ensure_schema(database)
    return database


def processing_row(database, upload_id: str) -> dict:
    uploads.insert_upload(database, upload_id=upload_id, filename="a.jpg", content_type="image/jpeg",
                          key=f"originals/{upload_id}.jpg", declared_size=None, callback_url=None,
                          upload_expires_at=uploads.utcnow() + timedelta(minutes=15))
    return uploads.claim_for_processing(database, upload_id)


def verdict(flagged: bool) -> dict:
    return {"score": 0.9 if flagged else 0.01, "flagged": flagged, "threshold": 0.8, "model": MODEL_PACKAGE,
            "model_version": "0.1.0"}


def test_the_verdict_is_kept_with_the_final_state_and_flagged_rows_are_counted(database):
    for upload_id, flagged, final in (("a" * 32, True, "completed"), ("b" * 32, True, "failed"),
                                      ("c" * 32, False, "completed")):
        processing_row(database, upload_id)
        if final == "completed":
            assert uploads.mark_completed(database, upload_id, size=1, width=1, height=1, image_format="JPEG",
                                          moderation=verdict(flagged))
        else:
            assert uploads.mark_failed(database, upload_id, "rejected_by_moderation", "scored 0.9",
                                       moderation=verdict(flagged))
    assert uploads.flagged_counts(database) == {"completed": 1, "failed": 1}
    assert not uploads.mark_completed(database, "a" * 32, size=1, width=1, height=1, image_format="JPEG",
                                      moderation=verdict(False))
    assert uploads.get_upload(database, "a" * 32)["moderation_flagged"] == 1


def test_a_failed_upload_tried_again_keeps_its_verdict_unless_refused_again(database):
    upload_id = "e" * 32
    processing_row(database, upload_id)
    uploads.mark_failed(database, upload_id, "rejected_by_moderation", "scored 0.9", moderation=verdict(True))
    assert uploads.replace_failure(database, upload_id, "corrupt_image", "broken")
    assert uploads.get_upload(database, upload_id)["moderation_score"] == 0.9
    assert uploads.replace_failure(database, upload_id, "rejected_by_moderation", "scored 0.95",
                                   moderation={**verdict(True), "score": 0.95})
    assert uploads.get_upload(database, upload_id)["moderation_score"] == 0.95


def test_the_record_carries_the_verdict_or_null(database):
    upload_id = "d" * 32
    row = processing_row(database, upload_id)
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert record_body(row, None, 60, now, [], BUILT_IN)["moderation"] is None
    uploads.mark_failed(database, upload_id, "rejected_by_moderation", "scored 0.9", moderation=verdict(True))
    body = record_body(uploads.get_upload(database, upload_id), None, 60, now, [], BUILT_IN)
    assert body["moderation"] == {"score": 0.9, "flagged": True, "threshold": 0.8,
                                  "model": {"name": MODEL_PACKAGE, "version": "0.1.0"}}
