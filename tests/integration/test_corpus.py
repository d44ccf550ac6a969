"""The image corpus once through the real pipeline (MinIO, Redis, relay, RQ worker): what the
unit tests prove of the image code holds for bytes that went through presigned PUTs and
bucket events, and every bad input ends failed with its code while the worker goes on."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

import imagegen
from imagegen import QUADRANTS, encode
from imgpipe.decoders import register_optional_decoders
from pipeline_client import Api, put_file
from stacks import running_stack

MAX_UPLOAD_BYTES = 2_000_000
ANY_DECLARED_TYPE = "image/png"  # what an image is comes from its bytes, not this


@pytest.fixture(scope="module")
def corpus_api(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("corpus-stack"), max_upload_bytes=MAX_UPLOAD_BYTES) as stack:
        yield Api.of(stack)


@pytest.fixture(scope="module")
def outcomes(corpus_api, tmp_path_factory):
    """Upload the whole corpus first, then wait: the worker meets good and bad input mixed."""
    folder = tmp_path_factory.mktemp("corpus")
    created = {}
    for name, data in CORPUS.items():
        if name == TOO_LARGE:
            continue  # refused before any upload: test_a_file_over_the_limit_gets_no_upload_url
        path = folder / name
        path.write_bytes(data)
        upload = corpus_api.create(name, ANY_DECLARED_TYPE, len(data))
        put_file(upload["upload"], path)
        created[name] = upload["id"]
    return {name: corpus_api.wait_final(upload_id, timeout=60) | {"id": upload_id}
            for name, upload_id in created.items()}


def derivatives(api: Api, upload_id: str) -> dict[str, Image.Image]:
    results = api.get(f"/uploads/{upload_id}/results").json()
    images = {}
    for kind in ("resized", "compressed", "thumbnail"):
        response = requests.get(results[kind], timeout=10)
        assert response.status_code == 200
        images[kind] = Image.open(io.BytesIO(response.content))
    return images


def close(pixel, colour, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


register_optional_decoders()  # the corpus has a HEIF picture, written through pillow_heif
CORPUS = {
    **{f"orientation-{n}.jpg": imagegen.oriented_jpeg(n, 400, 300) for n in range(1, 9)},
    "transparent.png": encode(imagegen.transparent_corner("RGBA", (400, 300)), "PNG"),
    "cmyk-red.jpg": imagegen.cmyk_jpeg((0, 255, 255, 0), (400, 300)),
    "animated.gif": imagegen.animated("GIF", [(0, 0, 255), (0, 255, 0)], (400, 300)),
    "photo.webp": encode(imagegen.photo_like(1200, 800, seed=1), "WEBP"),
    "photo.tiff": encode(imagegen.photo_like(600, 400, seed=2), "TIFF"),
    "photo.bmp": encode(imagegen.photo_like(300, 200, seed=3), "BMP"),
    "photo.heic": encode(imagegen.photo_like(1200, 800, seed=4), "HEIF"),
    "photo.avif": encode(imagegen.photo_like(1200, 800, seed=5), "AVIF"),
    "panorama.jpg": imagegen.photo_like_jpeg(10000, 500, seed=6, quality=40),
    "tiny.png": encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"),
    "metadata.jpg": imagegen.jpeg_with_metadata(640, 480),
    "empty.png": b"",
    **{f"not-an-image-{kind}": data for kind, data in imagegen.NOT_IMAGES.items()},
    "truncated.jpg": imagegen.truncated(imagegen.photo_like_jpeg(800, 600, seed=7)),
    "bomb.png": imagegen.pixel_bomb_png(30000, 30000),
    "too-large.bmp": encode(Image.new("RGB", (1000, 1000), (9, 9, 9)), "BMP"),
    "icon.ico": encode(Image.new("RGB", (32, 32), (255, 0, 0)), "ICO"),
}
EXPECTED_FAILURES = {
    "empty.png": "empty_file",
    **{f"not-an-image-{kind}": "not_an_image" for kind in imagegen.NOT_IMAGES},
    "truncated.jpg": "corrupt_image",
    "bomb.png": "too_many_pixels",
    "icon.ico": "unsupported_format",
}
TOO_LARGE = "too-large.bmp"


def test_the_corpus_is_what_it_claims():
    assert len(CORPUS[TOO_LARGE]) > MAX_UPLOAD_BYTES
    assert max(len(data) for name, data in CORPUS.items() if name != TOO_LARGE) < MAX_UPLOAD_BYTES


def test_a_file_over_the_limit_gets_no_upload_url(corpus_api):
    response = corpus_api.post("/uploads", json={"filename": TOO_LARGE, "content_type": ANY_DECLARED_TYPE,
                                                 "size": len(CORPUS[TOO_LARGE])})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "too_large")


def test_every_bad_input_fails_with_its_code(outcomes):
    failed = {name: outcome["error"]["code"] for name, outcome in outcomes.items() if outcome["status"] == "failed"}
    assert failed == EXPECTED_FAILURES
    assert all(outcomes[name]["error"]["message"] for name in EXPECTED_FAILURES)


def test_every_image_completes(outcomes):
    completed = {name for name, outcome in outcomes.items() if outcome["status"] == "completed"}
    assert completed == set(CORPUS) - set(EXPECTED_FAILURES) - {TOO_LARGE}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_arrives_upright(corpus_api, outcomes, orientation):
    images = derivatives(corpus_api, outcomes[f"orientation-{orientation}.jpg"]["id"])
    assert images["compressed"].size == (400, 300)
    for image in images.values():
        width, height = image.size
        rgb = image.convert("RGB")
        assert close(rgb.getpixel((width // 4, height // 4)), QUADRANTS["top_left"])
        assert close(rgb.getpixel((3 * width // 4, 3 * height // 4)), QUADRANTS["bottom_right"])
        assert 0x0112 not in image.getexif()


def test_colour_transparency_and_animation(corpus_api, outcomes):
    transparent = derivatives(corpus_api, outcomes["transparent.png"]["id"])["thumbnail"].convert("RGB")
    assert close(transparent.getpixel((10, 10)), (255, 255, 255), 8)
    assert close(transparent.getpixel((290, 215)), imagegen.OPAQUE_COLOUR)
    cmyk = derivatives(corpus_api, outcomes["cmyk-red.jpg"]["id"])["resized"].convert("RGB")
    assert close(cmyk.getpixel((200, 150)), (255, 0, 0), 60)
    gif = derivatives(corpus_api, outcomes["animated.gif"]["id"])["resized"].convert("RGB")
    assert close(gif.getpixel((200, 150)), (0, 0, 255))


def test_formats_sizes_and_no_metadata(corpus_api, outcomes):
    record = corpus_api.get(f"/uploads/{outcomes['photo.heic']['id']}").json()
    assert (record["image"]["format"], record["image"]["width"]) == ("HEIF", 1200)
    assert corpus_api.get(f"/uploads/{outcomes['photo.avif']['id']}").json()["image"]["format"] == "AVIF"
    panorama = derivatives(corpus_api, outcomes["panorama.jpg"]["id"])
    assert (panorama["resized"].size, panorama["thumbnail"].size) == ((1024, 51), (300, 15))
    tiny = derivatives(corpus_api, outcomes["tiny.png"]["id"])
    assert {image.size for image in tiny.values()} == {(1, 1)}
    for image in derivatives(corpus_api, outcomes["metadata.jpg"]["id"]).values():
        assert not image.getexif()
        assert "comment" not in image.info and "xmp" not in image.info
