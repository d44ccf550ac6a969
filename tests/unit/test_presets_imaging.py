"""Presets through the image code: a cover square cropped centred or on the detail, a WebP-only
preset, a changed thumbnail size, and the placeholder decoded back to a picture."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image, ImageStat

import imagegen
from imgpipe.presets import parse_presets
from imgpipe.settings import Settings
from processor.imaging import make_derivatives
from processor.imaging.placeholder import BASE83, placeholder

MAX_PIXELS = Settings().max_pixels
PRESETS = parse_presets("""
[presets.resized]
box = [1024, 1024]

[presets.compressed]

[presets.thumbnail]
box = [200, 200]

[presets.square]
box = [400, 400]
mode = "cover"

[presets.detail]
box = [400, 400]
mode = "cover"
crop = "entropy"

[presets.preview]
box = [640, 640]
formats = ["webp"]
quality = { webp = 70 }
""")


def opened(encoded: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(encoded))
    image.load()
    return image


def flat_left_detailed_right(size=(1500, 600)) -> Image.Image:
    """Flat grey but for its right fifth, which is a photo's texture."""
    picture = Image.new("RGB", size, (128, 128, 128))
    picture.paste(imagegen.photo_like(size[0] // 5, size[1], seed=8), (size[0] - size[0] // 5, 0))
    return picture


def test_every_preset_is_made_at_its_size_in_its_formats():
    made = make_derivatives(imagegen.photo_like_jpeg(1600, 1200, seed=1), max_pixels=MAX_PIXELS,
                            formats=("jpeg", "avif"), presets=PRESETS.presets)
    assert list(made.made) == ["resized", "compressed", "thumbnail", "square", "detail", "preview"]
    expected = {"resized": (1024, 768), "compressed": (1600, 1200), "thumbnail": (200, 150), "square": (400, 400),
                "detail": (400, 400), "preview": (640, 480)}
    for name, size in expected.items():
        formats = ["webp"] if name == "preview" else ["jpeg", "avif"]
        assert list(made.made[name]) == formats, name
        for fmt in formats:
            image = opened(made.made[name][fmt])
            assert (image.format, image.size) == ({"jpeg": "JPEG", "avif": "AVIF", "webp": "WEBP"}[fmt], size), name


def test_the_webp_only_preset_uses_its_own_quality():
    data = imagegen.photo_like_jpeg(1600, 1200, seed=1)
    ours = make_derivatives(data, max_pixels=MAX_PIXELS, presets=(PRESETS.get("preview"),)).made["preview"]["webp"]
    sharper = parse_presets("[presets.preview]\nbox = [640, 640]\nformats = [\"webp\"]\nquality = { webp = 95 }\n")
    better = make_derivatives(data, max_pixels=MAX_PIXELS, presets=sharper.presets).made["preview"]["webp"]
    assert len(ours) < len(better) * 0.7


@pytest.mark.parametrize("size", [(1600, 1200), (3600, 2400)])  # the second takes the DCT-scaled decode
def test_a_centred_cover_keeps_the_middle_of_the_picture(size):
    upright = imagegen.quadrant_marker(*size)
    upright.paste((255, 255, 0), (size[0] // 2 - 20, size[1] // 2 - 20, size[0] // 2 + 20, size[1] // 2 + 20))
    made = make_derivatives(imagegen.encode(upright, "JPEG", quality=92), max_pixels=MAX_PIXELS,
                            presets=(PRESETS.get("square"),))
    square = opened(made.made["square"]["jpeg"])
    assert square.size == (400, 400)
    middle = square.getpixel((200, 200))
    assert all(abs(a - b) < 40 for a, b in zip(middle, (255, 255, 0))), middle
    for (x, y), colour in {(60, 60): imagegen.RED, (340, 60): imagegen.GREEN, (60, 340): imagegen.BLUE,
                           (340, 340): imagegen.BLACK}.items():
        assert all(abs(a - b) < 40 for a, b in zip(square.getpixel((x, y)), colour)), (x, y)


def test_a_cover_crop_of_a_rotated_photo_is_upright():
    upright = imagegen.quadrant_marker(2400, 3600)
    exif = Image.Exif()
    exif[imagegen.EXIF_ORIENTATION] = 6
    stored = imagegen.stored_for_orientation(upright, 6)
    made = make_derivatives(imagegen.encode(stored, "JPEG", quality=92, exif=exif.tobytes()), max_pixels=MAX_PIXELS,
                            presets=(PRESETS.get("square"),))
    square = opened(made.made["square"]["jpeg"])
    assert all(abs(a - b) < 40 for a, b in zip(square.getpixel((60, 60)), imagegen.RED))
    assert all(abs(a - b) < 40 for a, b in zip(square.getpixel((340, 340)), imagegen.BLACK))


def test_an_entropy_cover_moves_to_the_detail_and_a_centred_one_does_not():
    data = imagegen.encode(flat_left_detailed_right(), "PNG")
    made = make_derivatives(data, max_pixels=MAX_PIXELS, presets=(PRESETS.get("square"), PRESETS.get("detail")))
    centred, detail = opened(made.made["square"]["jpeg"]), opened(made.made["detail"]["jpeg"])
    assert max(ImageStat.Stat(centred).stddev) < 3, "the middle of the picture is flat"
    right_half = detail.crop((200, 0, 400, 400))
    assert min(ImageStat.Stat(right_half).stddev) > 15, "the window reaches the textured side"


def test_a_picture_smaller_than_a_cover_box_is_cropped_to_its_shape_not_upscaled():
    made = make_derivatives(imagegen.encode(imagegen.photo_like(300, 200, seed=2), "PNG"), max_pixels=MAX_PIXELS,
                            presets=(PRESETS.get("square"),))
    assert opened(made.made["square"]["jpeg"]).size == (200, 200)


def test_the_thumbnail_follows_its_new_box():
    made = make_derivatives(imagegen.photo_like_jpeg(1000, 2000, seed=3), max_pixels=MAX_PIXELS,
                            presets=(PRESETS.get("thumbnail"),))
    assert opened(made.thumbnail).size == (100, 200)


# --- the placeholder -----------------------------------------------------------------------


def srgb_to_linear(value: float) -> float:
    value /= 255
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def linear_to_srgb(value: float) -> float:
    value = min(1.0, max(0.0, value))
    return 255 * (value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055)


def decode_blurhash(text: str, width: int, height: int) -> Image.Image:
    """BlurHash's decoder, as its specification describes it, written apart from the encoder."""
    digits = [BASE83.index(char) for char in text]

    def number(start: int, end: int) -> int:
        return math.fsum(digit * 83 ** (end - 1 - index) for index, digit in enumerate(digits[start:end], start))

    size_flag = int(number(0, 1))
    columns, rows = size_flag % 9 + 1, size_flag // 9 + 1
    assert len(text) == 4 + 2 * columns * rows
    maximum = (int(number(1, 2)) + 1) / 166
    dc = int(number(2, 6))
    colours = [tuple(srgb_to_linear(channel) for channel in (dc >> 16, (dc >> 8) & 255, dc & 255))]
    for index in range(1, columns * rows):
        value = int(number(4 + 2 * index, 6 + 2 * index))
        quantised = (value // (19 * 19), value // 19 % 19, value % 19)
        colours.append(tuple(math.copysign(((q - 9) / 9) ** 2, q - 9) * maximum for q in quantised))
    pixels = []
    for y in range(height):
        for x in range(width):
            linear = [0.0, 0.0, 0.0]
            for j in range(rows):
                for i in range(columns):
                    basis = math.cos(math.pi * x * i / width) * math.cos(math.pi * y * j / height)
                    for channel in range(3):
                        linear[channel] += colours[i + j * columns][channel] * basis
            pixels.append(tuple(round(linear_to_srgb(value)) for value in linear))
    image = Image.new("RGB", (width, height))
    image.putdata(pixels)
    return image


def mean_colour(image: Image.Image) -> tuple[float, float, float]:
    """The mean in linear light, as sRGB: the colour BlurHash's first component stands for."""
    pixels = list(image.convert("RGB").get_flattened_data())
    return tuple(linear_to_srgb(sum(srgb_to_linear(pixel[channel]) for pixel in pixels) / len(pixels))
                 for channel in range(3))


@pytest.mark.parametrize("make", [
    lambda: imagegen.photo_like(1600, 1200, seed=4),
    lambda: imagegen.photo_like(700, 1400, seed=5),
    lambda: Image.new("RGB", (640, 480), (30, 140, 200)),
])
def test_the_placeholder_decodes_to_a_tiny_picture_of_the_same_mean_colour(make):
    picture = make()
    made = make_derivatives(imagegen.encode(picture, "PNG"), max_pixels=MAX_PIXELS)
    decoded = decode_blurhash(made.blurhash, 32, round(32 * picture.height / picture.width))
    expected, got = mean_colour(picture), mean_colour(decoded)
    assert all(abs(a - b) <= 4 for a, b in zip(expected, got)), (expected, got)
    assert 20 <= len(made.blurhash) <= 30


def test_the_placeholder_has_detail_where_the_picture_has():
    """Four flat quadrants come back as four colours in their places, not one blur."""
    made = make_derivatives(imagegen.encode(imagegen.quadrant_marker(1200, 800), "PNG"), max_pixels=MAX_PIXELS)
    decoded = decode_blurhash(made.blurhash, 32, 21)
    red, green = decoded.getpixel((2, 2)), decoded.getpixel((29, 2))
    assert red[0] > red[1] + 60 and green[1] > green[0] + 60, (red, green)


def test_the_dominant_colour_is_the_one_covering_most_of_the_picture():
    picture = Image.new("RGB", (800, 600), (20, 60, 160))
    picture.paste((240, 200, 20), (0, 0, 250, 600))
    assert make_derivatives(imagegen.encode(picture, "PNG"), max_pixels=MAX_PIXELS).dominant_color == "#143ca0"


def test_a_transparent_picture_is_placed_on_white():
    picture = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    _, dominant = placeholder(picture)
    assert dominant == "#ffffff"


def test_the_placeholder_comes_from_the_smallest_uncropped_picture():
    """A cover crop sees only part of the picture; the placeholder stands for all of it."""
    data = imagegen.encode(flat_left_detailed_right(), "PNG")
    only_fit = make_derivatives(data, max_pixels=MAX_PIXELS, presets=(PRESETS.get("thumbnail"),))
    with_cover = make_derivatives(data, max_pixels=MAX_PIXELS,
                                  presets=(PRESETS.get("thumbnail"), PRESETS.get("detail")))
    assert with_cover.blurhash == only_fit.blurhash
